/**
 * Shares times a population are floored to whole peers. This absorbs the binary error of products
 * like 0.57 × 100 = 56.99999999999999, which must floor to 57, not 56.
 */
export const SHARE_EPSILON = 1e-9

/**
 * How many circuits may be OPEN or HALF_OPEN among `population` tracked peers:
 * `max(1, floor(share × population))`. Flooring makes the cap a promise (never more than the share,
 * the Envoy check `(ejected + 1) / hosts <= percent`); the floor of one is Envoy's
 * `always_eject_one_host`, without which a 10 % cap ejects nobody below ten hosts (Envoy #3263,
 * #26877). At the default 0.5: 1 peer → 1 (the only peer may be cut off: refusing would leave a
 * broken peer stalling every want), 2 → 1, 3 → 1, 4 → 2, 10 → 5.
 */
export function maxOpenPeers (population: number, share: number): number {
  const n = Math.floor(share * population + SHARE_EPSILON)
  return n > 1 ? n : 1
}

/**
 * Whether one more circuit may open: fewer than the cap are open, not counting the peer itself
 * when it is already counted as open.
 */
export function underOpenCap (openCount: number, selfOpen: boolean, population: number, share: number): boolean {
  return openCount - (selfOpen ? 1 : 0) < maxOpenPeers(population, share)
}
