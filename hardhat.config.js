// Only for `npx hardhat node`: a local JSON-RPC chain for integration tests and the devnet.
// Contracts are compiled by codecoop (py-solc-x), not by hardhat.
module.exports = { solidity: "0.8.28", networks: { hardhat: { chainId: 31337 } } };
