/**
 * Effect 3's `Schema` and the Effect 3 package's response fingerprint, for the Effect 4 package's test that checks
 * both packages fingerprint the same encoded shapes alike (`packages/effect4/test/fingerprint.test.ts`): imported
 * from here, `effect` resolves to the repository root's Effect 3.
 */
export * as Schema from "effect/Schema"
export { ofSchema } from "../../src/internal/fingerprint.js"
