/**
 * A stale-read checker shared by the chaos tests and the soak run: the rules (`stalenessBook.ts`) run by Effect 3
 * effects.
 */
import * as Effect from "effect/Effect"
import { StalenessBook } from "./stalenessBook.js"

export type { StaleRead } from "./stalenessBook.js"

export class Ledger extends StalenessBook {
  /**
   * A ledger write: bumps the version, then runs `invalidate` (the cache's invalidateNamespace); only when that
   * returned does the floor rise to the bumped version. Never fails: a failed invalidation is counted and returned.
   */
  write<E, R>(namespace: string, invalidate: Effect.Effect<void, E, R>): Effect.Effect<boolean, never, R> {
    return Effect.suspend(() => {
      const version = this.beginWrite(namespace)
      return Effect.match(invalidate, {
        onFailure: () => this.endWrite(namespace, version, false),
        onSuccess: () => this.endWrite(namespace, version, true)
      })
    })
  }

  /**
   * Runs a read, taking its floor when it starts and checking the version it answers; a stale answer is recorded
   * (and still returned, so the caller can count rather than stop).
   */
  read<A, E, R>(
    namespace: string,
    call: Effect.Effect<A, E, R>,
    inspect: (a: A) => { readonly version: number; readonly outcome: string }
  ): Effect.Effect<A, E, R> {
    return Effect.suspend(() => {
      const floor = this.floor(namespace)
      return Effect.tap(call, (a) =>
        Effect.sync(() => {
          const { outcome, version } = inspect(a)
          this.checkRead(namespace, floor, version, outcome)
        }))
    })
  }
}
