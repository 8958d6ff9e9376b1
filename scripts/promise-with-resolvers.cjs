// Preloaded (node --require) by scripts/ipfs-devnet.sh: js-ipfs 0.66 calls Promise.withResolvers,
// which arrived in Node 22; this machine and CI run Node 20.
'use strict'
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new Promise((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
