// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IContributionToken} from "./interfaces/IContributionToken.sol";

/// @title ContributionToken
/// @notice Contribution credits of a codecoop federation and its voting power. Minted only by the
/// round contract (rewards) and the member registry (welcome grants), under a per-epoch issuance cap
/// and a per-member per-epoch cap. Transfers are off until governance turns them on; delegation is
/// always allowed.
/// @dev Issuance is accounted in two steps so that the epoch cap is shared fairly among the members
/// of a round: `reserve` (at round finalisation) takes what is left of the epoch's cap for the whole
/// round, and `mintAllocation` (at each member's claim) mints against that reservation, charged to
/// the epoch of the reservation and cut to the member's cap for that epoch. An epoch is
/// `epochAnchor + (block - anchorBlock) / epochLength`; a change of `epochLength` starts a new epoch
/// at the block of the change. The owner is the federation's timelock.
contract ContributionToken is IContributionToken, ERC20, ERC20Permit, ERC20Votes, Ownable {
    using SafeCast for uint256;

    /// @notice Address allowed to reserve and mint rewards (the RoundManager).
    address public minter;
    /// @notice Most tokens one member receives from the allocations of one epoch.
    /// @dev Packed beside `minter`: a claim reads both in one slot.
    uint96 public memberEpochCap;
    /// @notice Address allowed to mint welcome grants (the MemberRegistry).
    address public registry;
    /// @notice Whether holders may transfer tokens to each other.
    bool public transfersEnabled;
    /// @notice Blocks per epoch.
    uint64 public epochLength;
    uint64 private _anchorBlock;
    uint64 private _anchorEpoch;
    /// @notice Most tokens issued in one epoch, all members together.
    uint256 public epochCap;
    /// @notice Tokens granted to each newly admitted member (0: no grant).
    uint256 public welcomeGrant;

    mapping(uint256 epoch => uint256) private _reserved;
    mapping(uint256 epoch => mapping(address member => uint256)) private _memberMinted;

    /// @notice Emitted when a reservation is taken from an epoch's cap; `granted < requested` means it was cut.
    event Reserved(uint256 indexed epoch, uint256 requested, uint256 granted);
    /// @notice Emitted for every mint. `ref` ties it to its cause: a round id, or a welcome grant's hash.
    event Allocated(address indexed member, uint256 indexed epoch, bytes32 ref, uint256 minted);
    /// @notice Emitted beside {Allocated} when the member's epoch cap cut the allocation.
    event AllocationCut(address indexed member, uint256 indexed epoch, bytes32 ref, uint256 requested, uint256 minted);
    event MinterSet(address indexed minter);
    event RegistrySet(address indexed registry);
    event TransfersEnabledSet(bool enabled);
    event EpochLengthSet(uint64 epochLength, uint256 newEpoch, uint256 fromBlock);
    event EpochCapSet(uint256 cap);
    event MemberEpochCapSet(uint256 cap);
    event WelcomeGrantSet(uint256 amount);

    error UnauthorizedMinter(address caller);
    error TransfersDisabled();
    error ZeroEpochLength();
    error ZeroAddress();
    error EpochUnknown(uint256 blockNumber, uint256 firstKnownBlock);

    /// @param admin Initial owner (the deployer), who wires the contracts and hands ownership to the timelock.
    constructor(
        string memory name_,
        string memory symbol_,
        address admin,
        uint64 epochLength_,
        uint256 epochCap_,
        uint256 memberEpochCap_,
        uint256 welcomeGrant_
    ) ERC20(name_, symbol_) ERC20Permit(name_) Ownable(admin) {
        if (epochLength_ == 0) revert ZeroEpochLength();
        epochLength = epochLength_;
        _anchorBlock = uint64(block.number);
        epochCap = epochCap_;
        memberEpochCap = memberEpochCap_.toUint96();
        welcomeGrant = welcomeGrant_;
        emit EpochLengthSet(epochLength_, 0, block.number);
        emit EpochCapSet(epochCap_);
        emit MemberEpochCapSet(memberEpochCap_);
        emit WelcomeGrantSet(welcomeGrant_);
    }

    // ------------------------------------------------------------------ epochs and supply views

    /// @notice The epoch a block falls in.
    /// @dev Requirements: the block is not before the last epoch-length change (auditors place earlier
    /// blocks with the {EpochLengthSet} events).
    function epochOf(uint256 blockNumber) public view returns (uint256) {
        if (blockNumber < _anchorBlock) revert EpochUnknown(blockNumber, _anchorBlock);
        return _anchorEpoch + (blockNumber - _anchorBlock) / epochLength;
    }

    /// @notice The current epoch.
    function currentEpoch() public view returns (uint256) {
        return epochOf(block.number);
    }

    /// @notice First block of the current epoch.
    function currentEpochStart() external view returns (uint256) {
        return _anchorBlock + (currentEpoch() - _anchorEpoch) * epochLength;
    }

    /// @notice Tokens reserved from an epoch's cap (what its allocations may mint at most).
    function reservedIn(uint256 epoch) external view returns (uint256) {
        return _reserved[epoch];
    }

    /// @notice Tokens a member received from allocations charged to an epoch.
    function memberMinted(uint256 epoch, address member) external view returns (uint256) {
        return _memberMinted[epoch][member];
    }

    // ------------------------------------------------------------------ issuance

    /// @notice Take up to `requested` tokens from what is left of the current epoch's cap.
    /// @dev Requirements: caller is the minter. Emits {Reserved}.
    /// @return epoch The epoch charged.
    /// @return granted What was reserved: `requested` cut to what is left of the cap.
    function reserve(uint256 requested) external override returns (uint256 epoch, uint256 granted) {
        if (msg.sender != minter) revert UnauthorizedMinter(msg.sender);
        epoch = currentEpoch();
        granted = _reserve(epoch, requested);
    }

    /// @notice Mint `amount` of an earlier reservation of `epoch` to `member`, cut to the member's cap.
    /// @dev Requirements: caller is the minter, which mints no more than it reserved (the
    /// RoundManager hands out floor-rounded shares of each round's reservation; auditors check the
    /// sums from the {Reserved} and {Allocated} events). Emits {Allocated} (and {AllocationCut}).
    function mintAllocation(address member, uint256 epoch, uint256 amount, bytes32 ref) external override {
        if (msg.sender != minter) revert UnauthorizedMinter(msg.sender);
        _mintAllocation(member, epoch, amount, ref);
    }

    /// @notice Mint the welcome grant to a newly admitted member, under the current epoch's caps.
    /// @dev Requirements: caller is the registry. Emits {Reserved} and {Allocated} when a grant is set;
    /// a grant cut by the member's cap gives the rest of its reservation back.
    function grantWelcome(address member) external override {
        if (msg.sender != registry) revert UnauthorizedMinter(msg.sender);
        uint256 amount = welcomeGrant;
        if (amount == 0) return;
        uint256 epoch = currentEpoch();
        uint256 granted = _reserve(epoch, amount);
        uint256 minted = _mintAllocation(member, epoch, granted, keccak256(abi.encode("welcome", member)));
        if (minted < granted) _reserved[epoch] -= granted - minted;
    }

    /// @notice What {reserve} would grant now: the current epoch and `requested` cut to what is left.
    function reservable(uint256 requested) external view override returns (uint256 epoch, uint256 granted) {
        epoch = currentEpoch();
        uint256 reserved = _reserved[epoch];
        uint256 left = epochCap > reserved ? epochCap - reserved : 0;
        granted = requested < left ? requested : left;
    }

    function _reserve(uint256 epoch, uint256 requested) private returns (uint256 granted) {
        uint256 reserved = _reserved[epoch];
        uint256 left = epochCap > reserved ? epochCap - reserved : 0;
        granted = requested < left ? requested : left;
        _reserved[epoch] = reserved + granted;
        emit Reserved(epoch, requested, granted);
    }

    function _mintAllocation(address member, uint256 epoch, uint256 amount, bytes32 ref) private returns (uint256 minted) {
        uint256 already = _memberMinted[epoch][member];
        uint256 room = memberEpochCap > already ? memberEpochCap - already : 0;
        minted = amount < room ? amount : room;
        if (minted > 0) {
            unchecked {
                _memberMinted[epoch][member] = already + minted; // minted <= cap - already
            }
            _mint(member, minted);
        }
        emit Allocated(member, epoch, ref, minted);
        if (minted < amount) emit AllocationCut(member, epoch, ref, amount, minted);
    }

    // ------------------------------------------------------------------ governance

    /// @notice Set the contract allowed to reserve and mint rewards.
    /// @dev Requirements: owner (timelock). Emits {MinterSet}.
    function setMinter(address minter_) external onlyOwner {
        if (minter_ == address(0)) revert ZeroAddress();
        minter = minter_;
        emit MinterSet(minter_);
    }

    /// @notice Set the contract allowed to mint welcome grants.
    /// @dev Requirements: owner (timelock). Emits {RegistrySet}.
    function setRegistry(address registry_) external onlyOwner {
        if (registry_ == address(0)) revert ZeroAddress();
        registry = registry_;
        emit RegistrySet(registry_);
    }

    /// @notice Turn holder-to-holder transfers on or off.
    /// @dev Requirements: owner (timelock). Emits {TransfersEnabledSet}.
    function setTransfersEnabled(bool enabled) external onlyOwner {
        transfersEnabled = enabled;
        emit TransfersEnabledSet(enabled);
    }

    /// @notice Change the epoch length; a new epoch starts at this block.
    /// @dev Requirements: owner (timelock), non-zero. Emits {EpochLengthSet}.
    function setEpochLength(uint64 epochLength_) external onlyOwner {
        if (epochLength_ == 0) revert ZeroEpochLength();
        uint256 next = currentEpoch() + 1;
        _anchorEpoch = next.toUint64();
        _anchorBlock = uint64(block.number);
        epochLength = epochLength_;
        emit EpochLengthSet(epochLength_, next, block.number);
    }

    /// @notice Set the total issuance cap per epoch.
    /// @dev Requirements: owner (timelock). Emits {EpochCapSet}.
    function setEpochCap(uint256 cap) external onlyOwner {
        epochCap = cap;
        emit EpochCapSet(cap);
    }

    /// @notice Set the per-member issuance cap per epoch.
    /// @dev Requirements: owner (timelock). Emits {MemberEpochCapSet}.
    function setMemberEpochCap(uint256 cap) external onlyOwner {
        memberEpochCap = cap.toUint96();
        emit MemberEpochCapSet(cap);
    }

    /// @notice Set the welcome grant for newly admitted members (0 turns it off).
    /// @dev Requirements: owner (timelock). Emits {WelcomeGrantSet}.
    function setWelcomeGrant(uint256 amount) external onlyOwner {
        welcomeGrant = amount;
        emit WelcomeGrantSet(amount);
    }

    // ------------------------------------------------------------------ OpenZeppelin plumbing

    /// @dev Mints and burns always pass; holder-to-holder transfers only when governance enabled them.
    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        if (from != address(0) && to != address(0) && !transfersEnabled) revert TransfersDisabled();
        super._update(from, to, value);
    }

    /// @inheritdoc ERC20Permit
    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
