// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IContributionToken} from "./interfaces/IContributionToken.sol";
import {IMemberRegistry} from "./interfaces/IMemberRegistry.sol";
import {CidCodec} from "./libraries/CidCodec.sol";

/// @title RoundManager
/// @notice The federated-learning rounds of a codecoop federation: commit-reveal update
/// registration, batched commit-reveal voting, finalisation, aggregate confirmation and reward claims.
/// @dev A round runs through block windows fixed when it opens:
/// submit (`commitUpdate`: a hash of the update), disclose (`submitUpdate`: the update's CID, which
/// must match the hash), commit (`commitVotes`), reveal (`revealVotes`), then anyone may
/// `finalize`; accepted updates are aggregated off-chain and the round completes when `k` active
/// members `confirmAggregate` the same CID before the confirm window ends (otherwise it fails and
/// the base stays).
///
/// Front-running: no CID is on the chain, in a pending transaction or (for an honest node) in any
/// store before the submit window closes, so no member can copy another's update into its own
/// commitment; update ids are the commitment order, which copy screening uses. An update that is
/// committed but not disclosed in the disclose window cannot be voted on and is never accepted.
///
/// Acceptance: an update is accepted when its approvals exceed its rejections and reach
/// `quorumBps` of the members who revealed (its submitter not counted).
///
/// Rewards, allocated at `finalize` and claimed by each member (pull):
/// - an accepted update earns `submitReward * score / rewardBound`, where `score` is the mean of its
///   approving voters' `lossDelta`, each clamped to `[0, rewardBound]` before summing; a minority of
///   `m` lying approvers among `n` moves the score by at most `m / n * rewardBound`, at O(1) gas a vote;
/// - each revealed vote that matches the outcome earns `voterReward`.
/// The round's total is reserved from the token's epoch cap at finalize (cut to what is left), each
/// claim gets its share of that reservation (`entitlement * granted / requested`, rounded down) and
/// is cut again to the member's epoch cap by the token.
///
/// CIDs are passed and emitted as binary CIDv1 (36 bytes: version 0x01, codec 0x55 raw or 0x70
/// dag-pb, multihash sha2-256 0x12 0x20, digest) and stored as codec byte + digest; see {CidCodec}.
/// Parameters are owned by the timelock; a round keeps the parameters it opened with.
contract RoundManager is Ownable, ReentrancyGuardTransient {
    /// @notice Hard limit on updates per round (bit masks of votes are 112 bits wide).
    uint256 public constant MAX_UPDATES = 112;
    uint256 private constant BPS = 10_000;

    enum State {
        None,
        Open,
        Finalized,
        Completed,
        Failed
    }
    enum Phase {
        None,
        Submit,
        Disclose,
        Commit,
        Reveal,
        Finalizable,
        Confirm,
        Completed,
        Failed
    }

    struct Params {
        uint32 submitWindow;
        uint32 discloseWindow;
        uint32 commitWindow;
        uint32 revealWindow;
        uint32 confirmWindow;
        uint16 quorumBps;
        uint16 confirmations;
        uint16 maxUpdates;
        uint64 rewardBound;
        uint128 submitReward;
        uint128 voterReward;
    }

    /// @dev Window ends are block numbers in 48 bits (2^48 blocks outlast any chain), so that all
    /// five share one slot.
    struct Round {
        uint48 submitEnd;
        uint48 discloseEnd;
        uint48 commitEnd;
        uint48 revealEnd;
        uint48 confirmEnd;
        uint112 acceptedMask;
        uint8 updateCount;
        uint16 revealedCount;
        State state;
        uint8 baseCodec;
        uint8 globalCodec;
        uint32 epoch;
        bool cut; // granted < requested: claims are scaled
        uint16 confirmations;
        uint16 quorumBps;
        uint16 maxUpdates;
        uint64 rewardBound;
        uint96 submitReward;
        uint96 voterReward;
        uint128 requested;
        uint128 granted;
        bytes32 baseDigest;
        bytes32 globalDigest;
    }

    /// @dev All zero until the update is disclosed (its id exists from its commitment).
    struct Update {
        address submitter;
        uint16 approvals;
        uint16 rejections;
        uint56 approvedDeltaSum;
        uint8 codec;
    }

    /// @dev One slot per member per round.
    struct Participation {
        uint112 voted;
        uint112 approved;
        uint8 ownUpdate; // update id + 1; 0: none
        bool revealed;
        bool confirmed;
        bool claimed;
    }

    IContributionToken public immutable token;
    IMemberRegistry public immutable members;

    Params private _params;
    /// @notice Name and parameters of the aggregation strategy every node runs, e.g. `fedavg`.
    string public aggregationStrategy;
    /// @notice The latest round id (rounds count from 1).
    uint128 public currentRound;
    /// @dev The round whose aggregate is the current base; 0 holds a base set by governance in
    /// `_rounds[0]`'s global CID (empty at deployment: the bare base model).
    uint128 private _baseRound;

    mapping(uint256 round => Round) private _rounds;
    mapping(uint256 round => mapping(uint256 id => Update)) private _updates;
    /// @dev The update's commitment until it is disclosed, then its CID's digest.
    mapping(uint256 round => mapping(uint256 id => bytes32)) private _updateDigests;
    mapping(uint256 round => mapping(address member => Participation)) private _participation;
    mapping(uint256 round => mapping(address member => bytes32)) private _commitments;
    mapping(uint256 round => mapping(bytes32 cidHash => uint256)) private _confirmCounts;

    event RoundOpened(
        uint256 indexed round, bytes baseCid, uint256 submitEnd, uint256 discloseEnd, uint256 commitEnd, uint256 revealEnd
    );
    event UpdateCommitted(uint256 indexed round, uint256 indexed updateId, address indexed submitter, bytes32 commitment);
    event UpdateSubmitted(
        uint256 indexed round, uint256 indexed updateId, address indexed submitter, bytes cid, uint256 nSamples, bytes metaCid
    );
    event VotesCommitted(uint256 indexed round, address indexed voter, bytes32 commitment);
    event VotesRevealed(uint256 indexed round, address indexed voter, uint16[] updateIds, bool[] approve, int64[] lossDelta);
    event UpdateDecided(
        uint256 indexed round, uint256 indexed updateId, bool accepted, uint256 approvals, uint256 rejections, uint256 score
    );
    event RoundFinalized(
        uint256 indexed round, uint256 acceptedMask, uint256 epoch, uint256 requested, uint256 granted, uint256 confirmEnd
    );
    event AggregateConfirmed(uint256 indexed round, address indexed member, bytes cid, uint256 count);
    event RoundCompleted(uint256 indexed round, bytes globalCid);
    event RoundFailed(uint256 indexed round);
    event WindowsSet(uint32 submitWindow, uint32 discloseWindow, uint32 commitWindow, uint32 revealWindow, uint32 confirmWindow);
    event QuorumSet(uint16 quorumBps);
    event ConfirmationsSet(uint16 confirmations);
    event MaxUpdatesSet(uint16 maxUpdates);
    event RewardsSet(uint128 submitReward, uint128 voterReward, uint64 rewardBound);
    event AggregationStrategySet(string strategy);
    event BaseSet(bytes cid);

    error NotActiveMember(address account);
    error UnknownRound(uint256 round);
    error WrongPhase(uint256 round, Phase actual);
    error PreviousRoundNotDone(uint256 round, Phase phase);
    error AlreadySubmitted(uint256 round, address member);
    error RoundFull(uint256 round, uint256 maxUpdates);
    error ZeroSamples();
    error EmptyCommitment();
    error AlreadyCommitted(uint256 round, address member);
    error NoCommitment(uint256 round, address member);
    error AlreadyRevealed(uint256 round, address member);
    error RevealMismatch(uint256 round, address member);
    error LengthMismatch(uint256 ids, uint256 approvals, uint256 deltas);
    error UnknownUpdate(uint256 round, uint256 updateId);
    error NotDisclosed(uint256 round, uint256 updateId);
    error SelfVote(uint256 round, uint256 updateId);
    error DuplicateVote(uint256 round, uint256 updateId);
    error NotEligible(uint256 round, address member);
    error AlreadyConfirmed(uint256 round, address member);
    error AggregateMismatch(uint256 round, bytes expected, bytes given);
    error AlreadyClaimed(uint256 round, address member);
    error NothingToClaim(uint256 round, address member);
    error InvalidParameter(string name);
    error ReservationMismatch(uint256 expected, uint256 reserved);

    constructor(
        address admin,
        IContributionToken token_,
        IMemberRegistry members_,
        Params memory params_,
        string memory aggregationStrategy_
    ) Ownable(admin) {
        token = token_;
        members = members_;
        _setWindows(
            params_.submitWindow, params_.discloseWindow, params_.commitWindow, params_.revealWindow, params_.confirmWindow
        );
        _setQuorum(params_.quorumBps);
        _setConfirmations(params_.confirmations);
        _setMaxUpdates(params_.maxUpdates);
        _setRewards(params_.submitReward, params_.voterReward, params_.rewardBound);
        _setAggregationStrategy(aggregationStrategy_);
    }

    modifier onlyActive() {
        if (!members.isActive(msg.sender)) revert NotActiveMember(msg.sender);
        _;
    }

    // ------------------------------------------------------------------ round lifecycle

    /// @notice Open the next round on the current base, once the previous one completed or failed.
    /// @dev Requirements: an active member; the previous round (if any) is completed, or its confirm
    /// window has passed (it is then marked failed). Emits {RoundOpened} (and {RoundFailed}).
    /// @return round The new round's id.
    function openRound() external onlyActive returns (uint256 round) {
        uint256 previous = currentRound;
        if (previous != 0) {
            Phase p = phase(previous);
            if (p == Phase.Failed) {
                if (_rounds[previous].state != State.Failed) {
                    _rounds[previous].state = State.Failed;
                    emit RoundFailed(previous);
                }
            } else if (p != Phase.Completed) {
                revert PreviousRoundNotDone(previous, p);
            }
        }
        round = previous + 1;
        currentRound = uint128(round);
        Params memory prm = _params;
        Round storage base = _rounds[_baseRound];
        (uint8 baseCodec, bytes32 baseDigest) = (base.globalCodec, base.globalDigest);
        Round storage r = _rounds[round];
        uint48 submitEnd = uint48(block.number) + prm.submitWindow;
        uint48 discloseEnd = submitEnd + prm.discloseWindow;
        r.submitEnd = submitEnd;
        r.discloseEnd = discloseEnd;
        r.commitEnd = discloseEnd + prm.commitWindow;
        r.revealEnd = discloseEnd + prm.commitWindow + prm.revealWindow;
        r.state = State.Open;
        r.baseCodec = baseCodec;
        r.baseDigest = baseDigest;
        r.confirmations = prm.confirmations;
        r.quorumBps = prm.quorumBps;
        r.maxUpdates = prm.maxUpdates;
        r.rewardBound = prm.rewardBound;
        r.submitReward = uint96(prm.submitReward);
        r.voterReward = uint96(prm.voterReward);
        emit RoundOpened(round, CidCodec.encode(baseCodec, baseDigest), submitEnd, discloseEnd, r.commitEnd, r.revealEnd);
    }

    /// @notice Commit to a trained update for `round` with one hash, before anyone can see it:
    /// keccak256(abi.encode(round, submitter, cid, nSamples, metaCid, salt)); see {submitUpdate}.
    /// @dev Requirements: an active member; the round's submit window; a non-zero commitment; one
    /// update per member per round; fewer than the round's `maxUpdates`. The update's id is the
    /// commitment order. Emits {UpdateCommitted}.
    /// @return updateId The update's index within the round.
    function commitUpdate(uint256 round, bytes32 commitment) external onlyActive returns (uint256 updateId) {
        _requirePhase(round, Phase.Submit);
        if (commitment == bytes32(0)) revert EmptyCommitment();
        Participation storage p = _participation[round][msg.sender];
        if (p.ownUpdate != 0) revert AlreadySubmitted(round, msg.sender);
        Round storage r = _rounds[round];
        updateId = r.updateCount;
        if (updateId >= r.maxUpdates) revert RoundFull(round, r.maxUpdates);
        r.updateCount = uint8(updateId + 1);
        p.ownUpdate = uint8(updateId + 1);
        _updateDigests[round][updateId] = commitment;
        emit UpdateCommitted(round, updateId, msg.sender, commitment);
    }

    /// @notice Disclose the update committed for `round`: its adapter's CID, sample count and
    /// metadata CID, and the salt of the commitment.
    /// @dev Requirements: an active member; the round's disclose window; a commitment of this member
    /// in this round equal to the hash of these arguments (see {commitUpdate}), not disclosed
    /// before; a binary CIDv1 sha2-256 `cid`; `nSamples > 0`. `nSamples` and `metaCid` are recorded
    /// in the event only. Emits {UpdateSubmitted}.
    /// @return updateId The update's index within the round (its commitment's).
    function submitUpdate(uint256 round, bytes calldata cid, uint256 nSamples, bytes calldata metaCid, bytes32 salt)
        external
        onlyActive
        returns (uint256 updateId)
    {
        _requirePhase(round, Phase.Disclose);
        if (nSamples == 0) revert ZeroSamples();
        (uint8 codec, bytes32 digest) = CidCodec.decode(cid);
        uint256 own = _participation[round][msg.sender].ownUpdate;
        if (own == 0) revert NoCommitment(round, msg.sender);
        updateId = own - 1;
        Update storage u = _updates[round][updateId];
        if (u.submitter != address(0)) revert AlreadySubmitted(round, msg.sender);
        bytes32 commitment = keccak256(abi.encode(round, msg.sender, cid, nSamples, metaCid, salt));
        if (_updateDigests[round][updateId] != commitment) revert RevealMismatch(round, msg.sender);
        u.submitter = msg.sender;
        u.codec = codec;
        _updateDigests[round][updateId] = digest;
        emit UpdateSubmitted(round, updateId, msg.sender, cid, nSamples, metaCid);
    }

    /// @notice Commit to all of one's votes in `round` with one hash:
    /// keccak256(abi.encode(round, voter, updateIds, approve, lossDelta, salt)).
    /// @dev Requirements: an active member; the round's commit window; one commitment per member per round.
    /// Emits {VotesCommitted}.
    function commitVotes(uint256 round, bytes32 commitment) external onlyActive {
        _requirePhase(round, Phase.Commit);
        if (commitment == bytes32(0)) revert EmptyCommitment();
        if (_commitments[round][msg.sender] != bytes32(0)) revert AlreadyCommitted(round, msg.sender);
        _commitments[round][msg.sender] = commitment;
        emit VotesCommitted(round, msg.sender, commitment);
    }

    /// @notice Reveal the votes committed for `round`: per update, approve or reject and the loss
    /// improvement the voter measured on its own held-out data (base loss minus loss with the update,
    /// in micro-nats; positive is better).
    /// @dev Requirements: an active member; the round's reveal window; a commitment equal to the
    /// hash of these arguments (see {commitVotes}); existing update ids, each at most once, never one's own.
    /// Emits {VotesRevealed}.
    function revealVotes(
        uint256 round,
        uint16[] calldata updateIds,
        bool[] calldata approve,
        int64[] calldata lossDelta,
        bytes32 salt
    ) external onlyActive {
        _requirePhase(round, Phase.Reveal);
        bytes32 commitment = _commitments[round][msg.sender];
        if (commitment == bytes32(0)) revert NoCommitment(round, msg.sender);
        Participation storage p = _participation[round][msg.sender];
        if (p.revealed) revert AlreadyRevealed(round, msg.sender);
        if (_voteCommitment(round, msg.sender, updateIds, approve, lossDelta, salt) != commitment) {
            revert RevealMismatch(round, msg.sender);
        }
        if (updateIds.length != approve.length || updateIds.length != lossDelta.length) {
            revert LengthMismatch(updateIds.length, approve.length, lossDelta.length);
        }
        (uint112 voted, uint112 approved) = _tally(round, p.ownUpdate, updateIds, approve, lossDelta);
        p.voted = voted;
        p.approved = approved;
        p.revealed = true;
        _rounds[round].revealedCount += 1;
        emit VotesRevealed(round, msg.sender, updateIds, approve, lossDelta);
    }

    /// @notice Decide every update of `round` after its reveal window, and reserve the round's rewards.
    /// @dev Anyone may call. Requirements: the reveal window has ended and the round is not finalized.
    /// Emits {UpdateDecided} per update, {RoundFinalized}, and {RoundCompleted} when nothing was accepted.
    function finalize(uint256 round) external nonReentrant {
        _requirePhase(round, Phase.Finalizable);
        Round storage r = _rounds[round];
        uint256 count = r.updateCount;
        uint256 revealed = r.revealedCount;
        uint112 mask = 0;
        uint256 submitTotal = 0;
        uint256 honestVotes = 0;
        for (uint256 id = 0; id < count; ++id) {
            Update memory u = _updates[round][id];
            uint256 eligible = revealed - (_participation[round][u.submitter].revealed ? 1 : 0);
            bool accepted = u.approvals > u.rejections && uint256(u.approvals) * BPS >= uint256(r.quorumBps) * eligible;
            uint256 score = 0;
            if (accepted) {
                mask |= uint112(1 << id);
                score = uint256(u.approvedDeltaSum) / u.approvals;
                submitTotal += _submitterReward(r, score);
                honestVotes += u.approvals;
            } else {
                honestVotes += u.rejections;
            }
            emit UpdateDecided(round, id, accepted, u.approvals, u.rejections, score);
        }
        uint256 requested = submitTotal + honestVotes * r.voterReward;
        r.acceptedMask = mask;
        r.requested = uint128(requested);
        uint48 confirmEnd = uint48(block.number) + _params.confirmWindow;
        r.confirmEnd = confirmEnd;
        if (mask == 0) {
            r.state = State.Completed;
            r.globalCodec = r.baseCodec;
            r.globalDigest = r.baseDigest;
        } else {
            r.state = State.Finalized;
        }
        // Every state write precedes the reservation: the grant is read first, then taken last.
        (uint256 epoch, uint256 granted) = requested > 0 ? token.reservable(requested) : (0, 0);
        r.epoch = uint32(epoch);
        r.granted = uint128(granted);
        r.cut = granted < requested;
        emit RoundFinalized(round, mask, epoch, requested, granted, confirmEnd);
        if (mask == 0) emit RoundCompleted(round, CidCodec.encode(r.baseCodec, r.baseDigest));
        if (requested > 0) {
            (uint256 reservedEpoch, uint256 reserved) = token.reserve(requested);
            if (reservedEpoch != epoch || reserved != granted) revert ReservationMismatch(granted, reserved);
        }
    }

    /// @notice Confirm the CID of the aggregate of `round`'s accepted updates, as this node computed it.
    /// @dev Requirements: an active member who revealed votes in this round (it knows the accepted
    /// set); the round's confirm window; one confirmation per member;
    /// once `k` members confirmed one CID, any other CID reverts. The k-th matching confirmation
    /// completes the round and makes its aggregate the base of the next. Emits {AggregateConfirmed}
    /// (and {RoundCompleted}).
    function confirmAggregate(uint256 round, bytes calldata cid) external onlyActive {
        Phase ph = phase(round);
        Round storage r = _rounds[round];
        bool lateSameWindow = ph == Phase.Completed && r.acceptedMask != 0 && block.number <= r.confirmEnd;
        if (ph != Phase.Confirm && !lateSameWindow) revert WrongPhase(round, ph);
        (uint8 codec, bytes32 digest) = CidCodec.decode(cid);
        Participation storage p = _participation[round][msg.sender];
        if (!p.revealed) revert NotEligible(round, msg.sender);
        if (p.confirmed) revert AlreadyConfirmed(round, msg.sender);
        p.confirmed = true;
        if (r.state == State.Completed) {
            if (r.globalCodec != codec || r.globalDigest != digest) {
                revert AggregateMismatch(round, CidCodec.encode(r.globalCodec, r.globalDigest), cid);
            }
            emit AggregateConfirmed(round, msg.sender, cid, 0);
            return;
        }
        uint256 n = ++_confirmCounts[round][keccak256(cid)];
        emit AggregateConfirmed(round, msg.sender, cid, n);
        if (n >= r.confirmations) {
            r.state = State.Completed;
            r.globalCodec = codec;
            r.globalDigest = digest;
            _baseRound = uint128(round);
            emit RoundCompleted(round, cid);
        }
    }

    /// @notice Mint one's rewards of a finalized round (whether or not its aggregate was then
    /// confirmed): for an accepted update and for votes that matched the outcome.
    /// Earned rewards stay claimable after a later suspension. The token's {Allocated} event records
    /// the claim (its `ref` is the round id).
    /// @dev Requirements: the round is finalized; not claimed before; something to claim.
    /// Emits the token's {Allocated}.
    function claim(uint256 round) external {
        Round storage r = _rounds[round];
        if (r.state < State.Finalized) revert WrongPhase(round, phase(round));
        Participation storage stored = _participation[round][msg.sender];
        Participation memory p = stored;
        if (p.claimed) revert AlreadyClaimed(round, msg.sender);
        uint256 owed = _entitlement(round, r, p);
        if (owed == 0) revert NothingToClaim(round, msg.sender);
        stored.claimed = true;
        uint256 amount = r.cut ? owed * r.granted / r.requested : owed;
        token.mintAllocation(msg.sender, r.epoch, amount, bytes32(round));
    }

    // ------------------------------------------------------------------ views

    /// @notice The phase of `round` at the current block.
    function phase(uint256 round) public view returns (Phase) {
        Round storage r = _rounds[round];
        State s = r.state;
        if (s == State.None) return Phase.None;
        if (s == State.Completed) return Phase.Completed;
        if (s == State.Failed) return Phase.Failed;
        uint256 b = block.number;
        if (s == State.Finalized) return b <= r.confirmEnd ? Phase.Confirm : Phase.Failed;
        if (b <= r.submitEnd) return Phase.Submit;
        if (b <= r.discloseEnd) return Phase.Disclose;
        if (b <= r.commitEnd) return Phase.Commit;
        if (b <= r.revealEnd) return Phase.Reveal;
        return Phase.Finalizable;
    }

    /// @dev The commitment of a ballot: keccak256(abi.encode(round, voter, updateIds, approve, lossDelta, salt)).
    function _voteCommitment(
        uint256 round,
        address voter,
        uint16[] calldata updateIds,
        bool[] calldata approve,
        int64[] calldata lossDelta,
        bytes32 salt
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(round, voter, updateIds, approve, lossDelta, salt));
    }

    /// @notice A round's record.
    function getRound(uint256 round) external view returns (Round memory) {
        return _rounds[round];
    }

    /// @notice An update's record and CID (all zero and empty while it is committed but not disclosed).
    function getUpdate(uint256 round, uint256 updateId) external view returns (Update memory update, bytes memory cid) {
        if (updateId >= _rounds[round].updateCount) revert UnknownUpdate(round, updateId);
        update = _updates[round][updateId];
        if (update.submitter != address(0)) cid = CidCodec.encode(update.codec, _updateDigests[round][updateId]);
    }

    /// @notice A member's participation in a round.
    function participationOf(uint256 round, address member) external view returns (Participation memory) {
        return _participation[round][member];
    }

    /// @notice A member's vote commitment in a round (zero: none).
    function commitmentOf(uint256 round, address member) external view returns (bytes32) {
        return _commitments[round][member];
    }

    /// @notice What `member` is owed for `round` before the epoch caps (0 before finalize or once claimed).
    function entitlement(uint256 round, address member) external view returns (uint256) {
        Round storage r = _rounds[round];
        Participation memory p = _participation[round][member];
        if (r.state == State.None || r.state == State.Open || p.claimed) return 0;
        return _entitlement(round, r, p);
    }

    /// @notice The base that the next round will open on (empty bytes: the bare base model).
    function currentBase() external view returns (bytes memory) {
        Round storage base = _rounds[_baseRound];
        return CidCodec.encode(base.globalCodec, base.globalDigest);
    }

    /// @notice The current parameters.
    function params() external view returns (Params memory) {
        return _params;
    }

    // ------------------------------------------------------------------ governance

    /// @notice Set the submit, disclose, commit, reveal and confirm windows, in blocks (each at least 1).
    /// @dev Requirements: owner (timelock). Emits {WindowsSet}.
    function setWindows(
        uint32 submitWindow,
        uint32 discloseWindow,
        uint32 commitWindow,
        uint32 revealWindow,
        uint32 confirmWindow
    ) external onlyOwner {
        _setWindows(submitWindow, discloseWindow, commitWindow, revealWindow, confirmWindow);
    }

    /// @notice Set the approval quorum, in basis points of the members who revealed (1..10000).
    /// @dev Requirements: owner (timelock). Emits {QuorumSet}.
    function setQuorum(uint16 quorumBps) external onlyOwner {
        _setQuorum(quorumBps);
    }

    /// @notice Set how many matching confirmations complete a round (at least 1).
    /// @dev Requirements: owner (timelock). Emits {ConfirmationsSet}.
    function setConfirmations(uint16 confirmations) external onlyOwner {
        _setConfirmations(confirmations);
    }

    /// @notice Set the most updates a round accepts (1..MAX_UPDATES).
    /// @dev Requirements: owner (timelock). Emits {MaxUpdatesSet}.
    function setMaxUpdates(uint16 maxUpdates) external onlyOwner {
        _setMaxUpdates(maxUpdates);
    }

    /// @notice Set the rewards: per accepted update at full score, per matching vote, and the lossDelta bound.
    /// @dev Requirements: owner (timelock); 0 < rewardBound <= 2^40; rewards fit 96 bits. Emits {RewardsSet}.
    function setRewards(uint128 submitReward, uint128 voterReward, uint64 rewardBound) external onlyOwner {
        _setRewards(submitReward, voterReward, rewardBound);
    }

    /// @notice Set the aggregation strategy every node runs (name and parameters).
    /// @dev Requirements: owner (timelock); non-empty. Emits {AggregationStrategySet}.
    function setAggregationStrategy(string calldata strategy) external onlyOwner {
        _setAggregationStrategy(strategy);
    }

    /// @notice Set the base the next round opens on, e.g. a released version or a rollback (empty: bare base model).
    /// @dev Requirements: owner (timelock); empty or a binary CIDv1 sha2-256. Emits {BaseSet}.
    function setBase(bytes calldata cid) external onlyOwner {
        Round storage base = _rounds[0];
        if (cid.length == 0) {
            base.globalCodec = 0;
            base.globalDigest = bytes32(0);
        } else {
            (base.globalCodec, base.globalDigest) = CidCodec.decode(cid);
        }
        _baseRound = 0;
        emit BaseSet(cid);
    }

    // ------------------------------------------------------------------ internals

    function _requirePhase(uint256 round, Phase expected) private view {
        Phase actual = phase(round);
        if (actual != expected) {
            if (actual == Phase.None) revert UnknownRound(round);
            revert WrongPhase(round, actual);
        }
    }

    /// @dev Counts one member's revealed votes into the updates' tallies; returns its vote masks.
    function _tally(
        uint256 round,
        uint256 own,
        uint16[] calldata updateIds,
        bool[] calldata approve,
        int64[] calldata lossDelta
    ) private returns (uint112 voted, uint112 approved) {
        for (uint256 i = 0; i < updateIds.length; ++i) {
            uint112 bit = _vote(round, own, voted, updateIds[i], approve[i], lossDelta[i]);
            voted |= bit;
            if (approve[i]) approved |= bit;
        }
    }

    /// @dev One vote: checks it, then adds it to the update's tally. An approval adds the voter's
    /// lossDelta, clamped to [0, rewardBound], to the update's sum.
    function _vote(uint256 round, uint256 own, uint112 voted, uint256 id, bool approve, int64 lossDelta)
        private
        returns (uint112 bit)
    {
        Round storage r = _rounds[round];
        if (id >= r.updateCount) revert UnknownUpdate(round, id);
        if (id + 1 == own) revert SelfVote(round, id);
        bit = uint112(1 << id);
        if (voted & bit != 0) revert DuplicateVote(round, id);
        Update storage u = _updates[round][id];
        if (u.submitter == address(0)) revert NotDisclosed(round, id);
        if (approve) {
            uint256 bound = r.rewardBound;
            uint256 d = lossDelta <= 0 ? 0 : uint256(int256(lossDelta));
            u.approvals += 1;
            u.approvedDeltaSum += uint56(d > bound ? bound : d);
        } else {
            u.rejections += 1;
        }
    }

    function _submitterReward(Round storage r, uint256 score) private view returns (uint256) {
        unchecked {
            return uint256(r.submitReward) * score / r.rewardBound; // < 2^96 * 2^40, bound > 0
        }
    }

    function _entitlement(uint256 round, Round storage r, Participation memory p) private view returns (uint256 owed) {
        uint256 mask = r.acceptedMask;
        uint256 own = p.ownUpdate;
        if (own != 0 && (mask >> (own - 1)) & 1 == 1) {
            Update storage u = _updates[round][own - 1];
            owed = _submitterReward(r, uint256(u.approvedDeltaSum) / u.approvals);
        }
        uint256 matching = uint256(p.voted) & ~(uint256(p.approved) ^ mask);
        unchecked {
            owed += _popcount(matching) * r.voterReward; // <= 112 * 2^96 on top of < 2^96
        }
    }

    function _popcount(uint256 x) private pure returns (uint256 n) {
        unchecked {
            while (x != 0) {
                x &= x - 1; // clears the lowest set bit; x != 0
                ++n;
            }
        }
    }

    function _setWindows(
        uint32 submitWindow,
        uint32 discloseWindow,
        uint32 commitWindow,
        uint32 revealWindow,
        uint32 confirmWindow
    ) private {
        if (submitWindow == 0 || discloseWindow == 0 || commitWindow == 0 || revealWindow == 0 || confirmWindow == 0) {
            revert InvalidParameter("windows");
        }
        _params.submitWindow = submitWindow;
        _params.discloseWindow = discloseWindow;
        _params.commitWindow = commitWindow;
        _params.revealWindow = revealWindow;
        _params.confirmWindow = confirmWindow;
        emit WindowsSet(submitWindow, discloseWindow, commitWindow, revealWindow, confirmWindow);
    }

    function _setQuorum(uint16 quorumBps) private {
        if (quorumBps == 0 || quorumBps > BPS) revert InvalidParameter("quorumBps");
        _params.quorumBps = quorumBps;
        emit QuorumSet(quorumBps);
    }

    function _setConfirmations(uint16 confirmations) private {
        if (confirmations == 0) revert InvalidParameter("confirmations");
        _params.confirmations = confirmations;
        emit ConfirmationsSet(confirmations);
    }

    function _setMaxUpdates(uint16 maxUpdates) private {
        if (maxUpdates == 0 || maxUpdates > MAX_UPDATES) revert InvalidParameter("maxUpdates");
        _params.maxUpdates = maxUpdates;
        emit MaxUpdatesSet(maxUpdates);
    }

    function _setRewards(uint128 submitReward, uint128 voterReward, uint64 rewardBound) private {
        // 2^40 keeps the sum of clamped deltas of 65535 approvals inside the 56-bit accumulator.
        if (rewardBound == 0 || rewardBound > 2 ** 40) revert InvalidParameter("rewardBound");
        if (submitReward > type(uint96).max || voterReward > type(uint96).max) revert InvalidParameter("rewards");
        _params.submitReward = submitReward;
        _params.voterReward = voterReward;
        _params.rewardBound = rewardBound;
        emit RewardsSet(submitReward, voterReward, rewardBound);
    }

    function _setAggregationStrategy(string memory strategy) private {
        if (bytes(strategy).length == 0) revert InvalidParameter("aggregationStrategy");
        aggregationStrategy = strategy;
        emit AggregationStrategySet(strategy);
    }
}
