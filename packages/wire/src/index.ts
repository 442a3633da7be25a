/**
 * The Redis wire protocol of `@ledgerlink/response-cache` and `@ledgerlink/response-cache-effect4`, written once:
 * processes on either package, on one Redis and one prefix, share entries, generations, locks and invalidations.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as BoundedMap from "./BoundedMap.js"

/**
 * @since 0.1.0
 */
export * as Commands from "./Commands.js"

/**
 * @since 0.1.0
 */
export * as Envelope from "./Envelope.js"

/**
 * @since 0.1.0
 */
export * as Keys from "./Keys.js"

/**
 * @since 0.1.0
 */
export * as Scripts from "./Scripts.js"

/**
 * @since 0.1.0
 */
export * as Tokens from "./Tokens.js"
