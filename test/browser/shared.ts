/** What the page and the Node side of browser.spec.ts agree on */

/** The blocks the Node provider holds in the WebSockets case: makeBlocks is deterministic, so both sides make the same ones */
export const WEBSOCKETS_BLOCKS = { n: 20, size: 1024, seed: 3 }
