/**
 * Every contender, in the order they run in each round and appear in the tables. Add one here.
 */
import type { Contender } from "../Contender.js"
import { asyncCacheDedupe } from "./asyncCacheDedupe.js"
import { bentocache } from "./bentocache.js"
import { cacheManager } from "./cacheManager.js"
import { cachified } from "./cachified.js"
import { effect4 } from "./effect4.js"
import { floor } from "./floor.js"
import { ours } from "./ours.js"
import { raw } from "./raw.js"

export const contenders: ReadonlyArray<Contender> = [
  ...raw,
  ...floor,
  ...ours,
  ...effect4,
  ...bentocache,
  ...cachified,
  ...cacheManager,
  ...asyncCacheDedupe
]
