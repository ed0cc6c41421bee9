/**
 * The provider side of the swarm bench (`bench/swarm-providers.ts`), in its own process: builds, arms
 * and tears down the providers of each cell on 127.0.0.1 as its stdin orders, one JSON line each way,
 * and exits when stdin ends.
 */

import { serveOrders } from './swarm-providers.ts'

await serveOrders()
