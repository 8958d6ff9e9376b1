// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IContributionToken} from "./interfaces/IContributionToken.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";

/// @title MemberRegistry
/// @notice Who belongs to a codecoop federation, and how to reach them over libp2p. Admission is
/// `Open` (joining admits at once) or `Approval` (joining applies; governance approves). Governance
/// suspends, reinstates and removes members; a member may leave of its own accord. Neither a removed
/// member nor one that left can join again with the same account. The owner is the federation's timelock.
contract MemberRegistry is IMemberRegistry, Ownable {
    enum Status {
        None,
        Pending,
        Active,
        Suspended,
        Removed,
        Left
    }
    enum Admission {
        Open,
        Approval
    }

    /// @dev The joining block is the {Joined} event's block.
    struct Member {
        Status status;
        string peerId;
        string[] multiaddrs;
        bytes metaCid;
    }

    /// @notice Most multiaddrs a member may list.
    uint256 public constant MAX_MULTIADDRS = 8;

    IContributionToken public immutable token;
    /// @notice How new members are admitted.
    Admission public admission;
    uint256 private _activeCount;
    address[] private _all;
    mapping(address => Member) private _members;

    event Joined(address indexed member, string peerId, string[] multiaddrs, bytes metaCid, Status status);
    event EndpointUpdated(address indexed member, string peerId, string[] multiaddrs);
    event StatusChanged(address indexed member, Status from, Status to);
    event AdmissionSet(Admission admission);

    error AlreadyMember(address member, Status status);
    error NotMember(address member);
    error InvalidStatus(address member, Status status);
    error EmptyPeerId();
    error TooManyMultiaddrs(uint256 given, uint256 max);

    constructor(address admin, IContributionToken token_, Admission admission_) Ownable(admin) {
        token = token_;
        admission = admission_;
        emit AdmissionSet(admission_);
    }

    /// @notice Join the federation with a libp2p peer id, its listen multiaddrs and a metadata CID.
    /// @dev Requirements: not a member before (a removed member, or one that left, cannot rejoin); a non-empty peer id; at
    /// most MAX_MULTIADDRS addresses. Admitted at once (with the welcome grant) under `Open`, pending
    /// under `Approval`. Emits {Joined}.
    function join(string calldata peerId, string[] memory multiaddrs, bytes calldata metaCid) external {
        Member storage m = _members[msg.sender];
        if (m.status != Status.None) revert AlreadyMember(msg.sender, m.status);
        _checkEndpoint(peerId, multiaddrs);
        m.peerId = peerId;
        m.multiaddrs = multiaddrs;
        m.metaCid = metaCid;
        _all.push(msg.sender);
        Status status = admission == Admission.Open ? Status.Active : Status.Pending;
        m.status = status;
        emit Joined(msg.sender, peerId, multiaddrs, metaCid, status);
        if (status == Status.Active) _admitted(msg.sender);
    }

    /// @notice Update one's own libp2p peer id and addresses.
    /// @dev Requirements: a pending, active or suspended member. Emits {EndpointUpdated}.
    function updateEndpoint(string calldata peerId, string[] memory multiaddrs) external {
        Member storage m = _members[msg.sender];
        if (m.status == Status.None || m.status == Status.Removed || m.status == Status.Left) revert NotMember(msg.sender);
        _checkEndpoint(peerId, multiaddrs);
        m.peerId = peerId;
        m.multiaddrs = multiaddrs;
        emit EndpointUpdated(msg.sender, peerId, multiaddrs);
    }

    /// @notice Leave the federation for good: the member no longer submits, votes or confirms, and is
    /// no longer counted among the active members. Rewards it earned before stay claimable.
    /// @dev Requirements: a pending, active or suspended member. Emits {StatusChanged}.
    function leave() external {
        Status from = _members[msg.sender].status;
        if (from == Status.None || from == Status.Removed || from == Status.Left) revert NotMember(msg.sender);
        if (from == Status.Active) _activeCount -= 1;
        _members[msg.sender].status = Status.Left;
        emit StatusChanged(msg.sender, from, Status.Left);
    }

    /// @notice Admit a pending member.
    /// @dev Requirements: owner (timelock); the member is pending. Emits {StatusChanged}.
    function approve(address member) external onlyOwner {
        _transition(member, Status.Pending, Status.Active);
        _admitted(member);
    }

    /// @notice Suspend an active member: it can no longer submit, vote, confirm or claim.
    /// @dev Requirements: owner (timelock); the member is active. Emits {StatusChanged}.
    function suspend(address member) external onlyOwner {
        _transition(member, Status.Active, Status.Suspended);
        _activeCount -= 1;
    }

    /// @notice Lift a suspension.
    /// @dev Requirements: owner (timelock); the member is suspended. Emits {StatusChanged}.
    function reinstate(address member) external onlyOwner {
        _transition(member, Status.Suspended, Status.Active);
        _activeCount += 1;
    }

    /// @notice Remove a member for good.
    /// @dev Requirements: owner (timelock); the member is pending, active or suspended. Emits {StatusChanged}.
    function remove(address member) external onlyOwner {
        Status from = _members[member].status;
        if (from == Status.None || from == Status.Removed || from == Status.Left) revert InvalidStatus(member, from);
        if (from == Status.Active) _activeCount -= 1;
        _members[member].status = Status.Removed;
        emit StatusChanged(member, from, Status.Removed);
    }

    /// @notice Set the admission mode.
    /// @dev Requirements: owner (timelock). Emits {AdmissionSet}.
    function setAdmission(Admission admission_) external onlyOwner {
        admission = admission_;
        emit AdmissionSet(admission_);
    }

    /// @notice Whether `account` is an active member.
    function isActive(address account) external view override returns (bool) {
        return _members[account].status == Status.Active;
    }

    /// @notice A member's status.
    function statusOf(address account) external view returns (Status) {
        return _members[account].status;
    }

    /// @notice A member's record.
    function memberOf(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @notice Number of active members.
    function activeCount() external view returns (uint256) {
        return _activeCount;
    }

    /// @notice Every address that ever joined, in joining order (for peer discovery; filter by status).
    function allMembers() external view returns (address[] memory) {
        return _all;
    }

    function _transition(address member, Status from, Status to) private {
        Status current = _members[member].status;
        if (current != from) revert InvalidStatus(member, current);
        _members[member].status = to;
        emit StatusChanged(member, from, to);
    }

    function _admitted(address member) private {
        _activeCount += 1;
        token.grantWelcome(member);
    }

    function _checkEndpoint(string calldata peerId, string[] memory multiaddrs) private pure {
        if (bytes(peerId).length == 0) revert EmptyPeerId();
        if (multiaddrs.length > MAX_MULTIADDRS) revert TooManyMultiaddrs(multiaddrs.length, MAX_MULTIADDRS);
    }
}
