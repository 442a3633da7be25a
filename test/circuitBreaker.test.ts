/**
 * Unit test of the circuit breaker's logic (src/CacheStore/CircuitBreaker.ts) over a small fake store whose
 * operations count the calls that reach them and fail, succeed or wait on demand. Time is TestClock's.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { RedisError } from "../src/CacheError.js"
import * as CacheKey from "../src/CacheKey.js"
import type { CacheStore } from "../src/CacheStore.js"
import * as CircuitBreaker from "../src/CacheStore/CircuitBreaker.js"

type Behaviour = "succeed" | "fail" | "hang"

/**
 * A store whose every operation counts a call, then behaves as told: succeeds, fails with a RedisError, or waits
 * (announcing on `entered`) until `release` is called with what it should end as.
 */
const fakeStore = Effect.gen(function*() {
  const state = {
    calls: 0,
    behaviour: "succeed" as Behaviour,
    entered: yield* Deferred.make<void>(),
    gate: yield* Deferred.make<"succeed" | "fail">()
  }
  const outcome = (operation: string, ending: "succeed" | "fail") =>
    ending === "succeed"
      ? Effect.void
      : Effect.fail(new RedisError({ operation, cause: new Error("the fake store was told to fail") }))
  const op = (operation: string) =>
    Effect.suspend(() => {
      state.calls++
      switch (state.behaviour) {
        case "succeed":
        case "fail":
          return outcome(operation, state.behaviour)
        case "hang":
          return Deferred.succeed(state.entered, void 0).pipe(
            Effect.zipRight(Deferred.await(state.gate)),
            Effect.flatMap((ending) => outcome(operation, ending))
          )
      }
    })
  /** Arms a fresh hang: the next call that hangs announces itself on `entered` and waits for `release`. */
  const hang = Effect.gen(function*() {
    state.behaviour = "hang"
    state.entered = yield* Deferred.make<void>()
    state.gate = yield* Deferred.make<"succeed" | "fail">()
    return { entered: state.entered, release: (ending: "succeed" | "fail") => Deferred.succeed(state.gate, ending) }
  })
  const store: CacheStore.Service = {
    lookup: () => Effect.as(op("lookup"), { generation: "g", entry: undefined }),
    write: () => Effect.as(op("write"), true),
    remove: () => op("unlink"),
    dropGeneration: () => op("invalidateNamespace"),
    sweep: () => Stream.fromEffect(Effect.as(op("scan"), 0)),
    acquireLock: () => Effect.as(op("lock"), true),
    releaseLock: () => op("unlock"),
    listenForRelease: () => Effect.as(op("subscribe"), Effect.void)
  }
  return { state, store, hang }
})

const failures = 3
const cooldownMs = 1000

const setup = Effect.gen(function*() {
  const fake = yield* fakeStore
  const breaker = CircuitBreaker.make(fake.store, { failures, cooldownMs })
  // The fake ignores keys; a real one keeps the calls honest.
  const namespace = CacheKey.namespaceKeys("cb", "ns")
  const key: CacheKey.CacheKey = {
    namespace,
    digest: "0".repeat(64),
    entry: `${namespace.entryPrefix}${"0".repeat(64)}`,
    lock: `${namespace.lockPrefix}${"0".repeat(64)}`
  }
  /** One call through the breaker: what it ended as, and whether it reached the store. */
  const call = (make: (store: CacheStore.Service) => Effect.Effect<unknown, RedisError>) =>
    Effect.gen(function*() {
      const before = fake.state.calls
      const exit = yield* Effect.exit(make(breaker))
      return { exit, reached: fake.state.calls > before }
    })
  const lookup = call((store) => store.lookup(key, undefined))
  const write = call((store) => store.write(key, { expected: "g", token: "t", payload: "1", graceMs: 0, ttlMs: 1000 }))
  return { fake, hang: fake.hang, key, namespace, lookup, write, call }
})

/** True when the call failed at once because the circuit is open (not because the store failed). */
const isOpen = (exit: Exit.Exit<unknown, RedisError>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && /circuit open/.test(exit.cause.error.message)
const isStoreFailure = (exit: Exit.Exit<unknown, RedisError>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" && /told to fail/.test(exit.cause.error.message)

describe("CircuitBreaker", () => {
  it.effect("stays closed through failures under the threshold, and a success resets the count", () =>
    Effect.gen(function*() {
      const { fake, lookup } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures - 1; i++) assert.isTrue(isStoreFailure((yield* lookup).exit))
      fake.state.behaviour = "succeed"
      assert.isTrue(Exit.isSuccess((yield* lookup).exit))
      fake.state.behaviour = "fail"
      // The count started over: another `failures - 1` failures still reach the store.
      for (let i = 0; i < failures - 1; i++) {
        const { exit, reached } = yield* lookup
        assert.isTrue(reached && isStoreFailure(exit))
      }
      assert.strictEqual(fake.state.calls, 2 * (failures - 1) + 1)
    }))

  it.effect("after `failures` failures in a row, calls fail at once without reaching the store", () =>
    Effect.gen(function*() {
      const { call, fake, key, lookup, namespace, write } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures; i++) assert.isTrue(isStoreFailure((yield* lookup).exit))
      assert.strictEqual(fake.state.calls, failures)
      // The store would succeed now, but the breaker does not ask it: every operation fails at once.
      fake.state.behaviour = "succeed"
      const others = [
        lookup,
        write,
        call((store) => store.remove(key)),
        call((store) => store.acquireLock(key, "t", 10)),
        call((store) => store.releaseLock(key, "t")),
        call((store) => Effect.scoped(store.listenForRelease(key)))
      ]
      for (const attempt of others) {
        const { exit, reached } = yield* attempt
        assert.isFalse(reached)
        assert.isTrue(isOpen(exit))
        const error = Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "RedisError")
      }
      // Invalidations and sweeps always reach the store (a full Redis refuses reads yet accepts them), and leave
      // the circuit open.
      const callsBefore = fake.state.calls
      for (
        const attempt of [
          call((store) => store.dropGeneration(namespace)),
          call((store) => Stream.runDrain(store.sweep(namespace)))
        ]
      ) {
        const { exit, reached } = yield* attempt
        assert.isTrue(reached)
        assert.isTrue(Exit.isSuccess(exit))
      }
      fake.state.calls = callsBefore
      // Still open one millisecond before the cool-down ends.
      yield* TestClock.adjust(cooldownMs - 1)
      assert.isFalse((yield* lookup).reached)
      assert.strictEqual(fake.state.calls, failures)
    }))

  it.effect("after the cool-down exactly one probe reaches the store; the others fail at once meanwhile", () =>
    Effect.gen(function*() {
      const { fake, hang, lookup } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures; i++) yield* lookup
      yield* TestClock.adjust(cooldownMs)
      const { entered, release } = yield* hang
      const probe = yield* Effect.fork(lookup)
      yield* Deferred.await(entered)
      // While the probe is out, every other call fails at once.
      const during = yield* Effect.all(Array.from({ length: 20 }, () => lookup), { concurrency: "unbounded" })
      assert.isTrue(during.every(({ exit, reached }) => !reached && isOpen(exit)))
      assert.strictEqual(fake.state.calls, failures + 1)
      yield* release("succeed")
      const probed = yield* Fiber.join(probe)
      assert.isTrue(probed.reached && Exit.isSuccess(probed.exit))
    }))

  it.effect("a failed probe re-opens for a whole cool-down; a successful one closes", () =>
    Effect.gen(function*() {
      const { fake, hang, lookup } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures; i++) yield* lookup
      yield* TestClock.adjust(cooldownMs)
      // The probe fails: one failure is enough to open again (not `failures` more).
      const first = yield* hang
      const probe = yield* Effect.fork(lookup)
      yield* Deferred.await(first.entered)
      yield* TestClock.adjust(200) // the probe takes a while; the new cool-down counts from its end
      yield* first.release("fail")
      assert.isTrue(isStoreFailure((yield* Fiber.join(probe)).exit))
      fake.state.behaviour = "succeed"
      const calls = fake.state.calls
      assert.isTrue(isOpen((yield* lookup).exit))
      yield* TestClock.adjust(cooldownMs - 1)
      assert.isTrue(isOpen((yield* lookup).exit))
      assert.strictEqual(fake.state.calls, calls)
      yield* TestClock.adjust(1)
      // The second probe succeeds: closed, and every call reaches the store again, concurrently too.
      const second = yield* lookup
      assert.isTrue(second.reached && Exit.isSuccess(second.exit))
      const after = yield* Effect.all(Array.from({ length: 10 }, () => lookup), { concurrency: "unbounded" })
      assert.isTrue(after.every(({ exit, reached }) => reached && Exit.isSuccess(exit)))
      assert.strictEqual(fake.state.calls, calls + 11)
      // Closed means the count starts from zero: it takes `failures` failures to open again.
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures - 1; i++) yield* lookup
      assert.isTrue((yield* lookup).reached)
      assert.isFalse((yield* lookup).reached)
    }))

  it.effect("interrupting a call does not count as a failure, nor as a success", () =>
    Effect.gen(function*() {
      const { fake, hang, lookup } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures - 1; i++) yield* lookup
      const { entered } = yield* hang
      const interrupted = yield* Effect.fork(lookup)
      yield* Deferred.await(entered)
      yield* Fiber.interrupt(interrupted)
      // Had the interruption counted, this would be the `failures + 1`-th call and fail at once.
      fake.state.behaviour = "fail"
      const next = yield* lookup
      assert.isTrue(next.reached && isStoreFailure(next.exit))
      // Nor did it reset the count: the failures before it and this one make `failures`, so the circuit is open.
      assert.isTrue(isOpen((yield* lookup).exit))
      assert.strictEqual(fake.state.calls, failures + 1)
    }))

  it.effect("an interrupted probe neither re-opens the circuit nor leaves it stuck: the next call probes", () =>
    Effect.gen(function*() {
      const { fake, hang, lookup } = yield* setup
      fake.state.behaviour = "fail"
      for (let i = 0; i < failures; i++) yield* lookup
      yield* TestClock.adjust(cooldownMs)
      const { entered } = yield* hang
      const probe = yield* Effect.fork(lookup)
      yield* Deferred.await(entered)
      assert.isTrue(isOpen((yield* lookup).exit))
      yield* Fiber.interrupt(probe)
      fake.state.behaviour = "succeed"
      const next = yield* lookup
      assert.isTrue(next.reached && Exit.isSuccess(next.exit))
      assert.isTrue((yield* lookup).reached)
    }))
})
