// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {CidCodec} from "./libraries/CidCodec.sol";

/// @title ModelRegistry
/// @notice Released model versions of a codecoop federation and its charter. A release is written
/// only by the timelock, after a passed proposal. The charter is the guideline every participant
/// agrees to (data protocol; model architecture; update strategy; version-control and release
/// rules), stored off-chain under `charterCid`; the parts a node must check mechanically are also
/// held here: the base model id and the sha256 of its weights.
contract ModelRegistry is Ownable {
    /// @dev The release block is the {VersionReleased} event's block.
    struct Version {
        string tag;
        bytes cid;
        uint256 parent; // version id; 0: none
        bytes metricsCid;
        string baseModelId;
    }

    struct Charter {
        bytes cid;
        string baseModelId;
        bytes32 baseWeightsHash;
    }

    Charter private _charter;
    /// @notice Release rule: least relative perplexity improvement over the parent, in basis points.
    uint16 public minImprovementBps;
    Version[] private _versions;
    mapping(bytes32 tagHash => uint256 id) private _byTag;

    event CharterSet(bytes cid, string baseModelId, bytes32 baseWeightsHash);
    event MinImprovementSet(uint16 bps);
    event VersionReleased(uint256 indexed id, string tag, bytes cid, uint256 parent, bytes metricsCid, string baseModelId);

    error TagExists(string tag);
    error EmptyTag();
    error UnknownVersion(uint256 id);
    error UnknownTag(string tag);
    error InvalidParameter(string name);

    constructor(
        address admin,
        bytes memory charterCid,
        string memory baseModelId,
        bytes32 baseWeightsHash,
        uint16 minImprovementBps_
    ) Ownable(admin) {
        _setCharter(charterCid, baseModelId, baseWeightsHash);
        _setMinImprovement(minImprovementBps_);
    }

    /// @notice Release a model version.
    /// @dev Requirements: owner (timelock); a new non-empty tag; a binary CIDv1 sha2-256 `cid`; an
    /// existing parent or 0; `metricsCid` empty or a binary CIDv1. Emits {VersionReleased}.
    /// @return id The version id (from 1).
    function release(
        string calldata tag,
        bytes calldata cid,
        uint256 parent,
        bytes calldata metricsCid,
        string calldata baseModelId
    ) external onlyOwner returns (uint256 id) {
        if (bytes(tag).length == 0) revert EmptyTag();
        bytes32 key = keccak256(bytes(tag));
        if (_byTag[key] != 0) revert TagExists(tag);
        CidCodec.check(cid);
        if (metricsCid.length != 0) CidCodec.check(metricsCid);
        if (parent > _versions.length) revert UnknownVersion(parent);
        _versions.push(
            Version({
                tag: tag,
                cid: cid,
                parent: parent,
                metricsCid: metricsCid,
                baseModelId: baseModelId
            })
        );
        id = _versions.length;
        _byTag[key] = id;
        emit VersionReleased(id, tag, cid, parent, metricsCid, baseModelId);
    }

    /// @notice Replace the federation charter.
    /// @dev Requirements: owner (timelock); a binary CIDv1 sha2-256 `cid`. Emits {CharterSet}.
    function setCharter(bytes calldata cid, string calldata baseModelId, bytes32 baseWeightsHash) external onlyOwner {
        _setCharter(cid, baseModelId, baseWeightsHash);
    }

    /// @notice Set the release rule's least relative improvement (basis points, at most 10000).
    /// @dev Requirements: owner (timelock). Emits {MinImprovementSet}.
    function setMinImprovement(uint16 bps) external onlyOwner {
        _setMinImprovement(bps);
    }

    /// @notice The federation charter.
    function charter() external view returns (Charter memory) {
        return _charter;
    }

    /// @notice Number of released versions.
    function versionCount() external view returns (uint256) {
        return _versions.length;
    }

    /// @notice A version by id (from 1).
    function version(uint256 id) public view returns (Version memory) {
        if (id == 0 || id > _versions.length) revert UnknownVersion(id);
        return _versions[id - 1];
    }

    /// @notice A version by tag.
    function versionByTag(string calldata tag) external view returns (uint256 id, Version memory v) {
        id = _byTag[keccak256(bytes(tag))];
        if (id == 0) revert UnknownTag(tag);
        v = _versions[id - 1];
    }

    function _setCharter(bytes memory cid, string memory baseModelId, bytes32 baseWeightsHash) private {
        if (cid.length != 36) revert InvalidParameter("charterCid");
        if (bytes(baseModelId).length == 0) revert InvalidParameter("baseModelId");
        _charter = Charter({cid: cid, baseModelId: baseModelId, baseWeightsHash: baseWeightsHash});
        emit CharterSet(cid, baseModelId, baseWeightsHash);
    }

    function _setMinImprovement(uint16 bps) private {
        if (bps > 10_000) revert InvalidParameter("minImprovementBps");
        minImprovementBps = bps;
        emit MinImprovementSet(bps);
    }
}
