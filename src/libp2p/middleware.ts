import type { StreamMiddleware } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

/**
 * Installs one middleware on several protocols without losing anyone else's.
 *
 * `registrar.use()` REPLACES a protocol's middleware list, so we append ours to whatever is there,
 * and the returned uninstaller removes only our entry from whatever the list is by then (another
 * service may have changed it meanwhile), dropping the list when nothing else is left. Ours runs
 * last, closest to the handler, so other middleware sees the stream as it would without us.
 */
export function installMiddleware (registrar: Registrar, protocols: readonly string[], middleware: StreamMiddleware): () => void {
  for (const protocol of protocols) {
    registrar.use(protocol, [...registrar.getMiddleware(protocol), middleware])
  }

  return () => {
    for (const protocol of protocols) {
      const others = registrar.getMiddleware(protocol).filter(mw => mw !== middleware)
      if (others.length > 0) {
        registrar.use(protocol, others)
      } else {
        registrar.unuse(protocol)
      }
    }
  }
}
