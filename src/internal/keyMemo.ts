/**
 * Keys of queries seen before, so that a hot query is encoded and digested once: by the values of its fields when
 * its schema is a plain struct (`keysByFields.ts`), else by the query object itself (queries are values: schema
 * types are readonly), which finds it when the same object comes back — a constant query, a decoded request kept
 * around. Only keys derived successfully are remembered; the namespace is still asked on every call.
 */
import * as Either from "effect/Either"
import type * as Cacheable from "../Cacheable.js"
import type { SerdeError } from "../CacheError.js"
import * as CacheKey from "../CacheKey.js"
import * as CacheKeyInternal from "./cacheKey.js"
import { KeysByFields } from "./keysByFields.js"

export class KeyMemo {
  private readonly keysByFields = new WeakMap<Cacheable.Cacheable<any, any, any, any>, KeysByFields | null>()
  private readonly keysOfQueries = new WeakMap<
    object,
    { readonly cacheable: unknown; readonly key: CacheKey.CacheKey }
  >()

  constructor(private readonly prefix: string) {}

  /** The Redis keys of a namespace (memoised by `CacheKey`). */
  namespaceKeys(namespace: string): CacheKey.NamespaceKeys {
    return CacheKey.namespaceKeys(this.prefix, namespace)
  }

  keyOf<Q, A, E, R>(
    cacheable: Cacheable.Cacheable<Q, A, E, R>,
    query: Q,
    namespace: string
  ): Either.Either<CacheKey.CacheKey, SerdeError> {
    let byFields = this.keysByFields.get(cacheable)
    if (byFields === undefined) {
      byFields = KeysByFields.for(cacheable.query, 10_000) ?? null
      this.keysByFields.set(cacheable, byFields)
    }
    const byIdentity = byFields === null && typeof query === "object" && query !== null
    if (byFields !== null) {
      const known = byFields.get(query, namespace)
      if (known !== undefined) return Either.right(known)
    } else if (byIdentity) {
      const memo = this.keysOfQueries.get(query)
      if (memo !== undefined && memo.cacheable === cacheable && memo.key.namespace.namespace === namespace) {
        return Either.right(memo.key)
      }
    }
    const key = CacheKeyInternal.unsafeMake(this.namespaceKeys(namespace), cacheable, query)
    if (Either.isRight(key)) {
      if (byFields !== null) byFields.set(query, key.right)
      else if (byIdentity) this.keysOfQueries.set(query, { cacheable, key: key.right })
    }
    return key
  }
}
