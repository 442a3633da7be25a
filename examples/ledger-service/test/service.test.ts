/**
 * The ledger snapshot service over real HTTP: the suite on the memory cache and on the tests' own redis-server
 * (embedded ledger), then what only a real Redis or a real process can show.
 */
import { inject } from "@effect/vitest"
import { ResponseCache } from "@ledgerlink/response-cache"
import * as EmbeddedLedger from "../src/LedgerRepo/Embedded.js"
import { cacheOf, serviceUnderTest, uniquePrefix } from "./harness.js"
import { serviceSuite } from "./suite.js"

serviceSuite(
  "service: memory cache, embedded ledger",
  serviceUnderTest(cacheOf("memory", ResponseCache.layerMemory()), EmbeddedLedger.layer())
)

serviceSuite(
  "service: Redis cache (the suite's redis-server), embedded ledger",
  serviceUnderTest(
    cacheOf("redis", ResponseCache.layerRedis({ url: inject("redisUrl"), prefix: uniquePrefix("suite") })),
    EmbeddedLedger.layer()
  )
)
