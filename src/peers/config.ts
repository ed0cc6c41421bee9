/** The per-peer table's bounds (the numbers the peers/ folder uses, with where they came from) */

/** Peers tracked at once: 33x libp2p's default 300 connections, about 5 MB of engine state */
export const DEFAULT_MAX_PEERS = 10_000
/** A clean peer unseen this long is forgotten, ms: the health monitor's `maxAge` of 10 min */
export const DEFAULT_IDLE_TIMEOUT = 600_000
/** 2^24: the largest `maxPeers` accepted, far above any real table */
export const MAX_PEERS_LIMIT = 2 ** 24
