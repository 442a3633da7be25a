/**
 * `@ledgerlink/response-cache-effect4`: response caching for Effect 4 services, wire compatible with
 * `@ledgerlink/response-cache` (Effect 3).
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Cacheable from "./Cacheable.js"

/**
 * @since 0.1.0
 */
export * from "./CacheError.js"

/**
 * @since 0.1.0
 */
export * as CacheKey from "./CacheKey.js"

/**
 * @since 0.1.0
 */
export * as CachePolicy from "./CachePolicy.js"

/**
 * @since 0.1.0
 */
export * as CacheStore from "./CacheStore.js"

/**
 * @since 0.1.0
 */
export * as IoRedis from "./IoRedis.js"

/**
 * @since 0.1.0
 */
export * as ResponseCache from "./ResponseCache.js"

/**
 * @since 0.1.0
 */
export * as ResponseCacheMetrics from "./ResponseCacheMetrics.js"
