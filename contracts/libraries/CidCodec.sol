// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title CidCodec
/// @notice The on-chain form of a CID. Contracts take and emit the binary CIDv1 (36 bytes:
/// `0x01` version, codec `0x55` raw or `0x70` dag-pb, multihash `0x12` sha2-256, length `0x20`,
/// then the 32-byte digest) and store it as one codec byte plus the digest, from which the exact CID
/// string (base32 `b...`) is rebuilt. Codec 0 stands for "no CID" and encodes to empty bytes.
library CidCodec {
    uint8 internal constant RAW = 0x55;
    uint8 internal constant DAG_PB = 0x70;

    error InvalidCid(bytes cid);

    /// @notice Split a binary CIDv1 sha2-256 into codec and digest.
    /// @dev Reverts {InvalidCid} for anything else.
    function decode(bytes calldata cid) internal pure returns (uint8 codec, bytes32 digest) {
        if (cid.length != 36 || cid[0] != 0x01 || cid[2] != 0x12 || cid[3] != 0x20) revert InvalidCid(cid);
        codec = uint8(cid[1]);
        if (codec != RAW && codec != DAG_PB) revert InvalidCid(cid);
        digest = bytes32(cid[4:36]);
    }

    /// @notice Revert {InvalidCid} unless `cid` is a binary CIDv1 sha2-256 (raw or dag-pb).
    function check(bytes calldata cid) internal pure {
        decode(cid);
    }

    /// @notice Rebuild the binary CID from codec and digest (empty when codec is 0).
    function encode(uint8 codec, bytes32 digest) internal pure returns (bytes memory) {
        if (codec == 0) return "";
        return abi.encodePacked(uint8(0x01), codec, uint8(0x12), uint8(0x20), digest);
    }
}
