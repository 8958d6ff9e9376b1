// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ContributionToken} from "contracts/ContributionToken.sol";

/// @title UncappedToken (test only)
/// @notice A ContributionToken with two backdoors the ledger audit must catch: `bonus` mints past
/// both caps and dresses the mint up as a round claim (an {Allocated} event with the round as ref);
/// `silentMint` mints with no {Allocated} event at all.
contract UncappedToken is ContributionToken {
    constructor(
        string memory name_,
        string memory symbol_,
        address admin,
        uint64 epochLength_,
        uint256 epochCap_,
        uint256 memberEpochCap_,
        uint256 welcomeGrant_
    ) ContributionToken(name_, symbol_, admin, epochLength_, epochCap_, memberEpochCap_, welcomeGrant_) {}

    /// @notice Mint `amount` to `member` as if it were its claim of `round`, ignoring every cap.
    function bonus(address member, uint256 amount, uint256 round) external {
        _mint(member, amount);
        emit Allocated(member, currentEpoch(), bytes32(round), amount);
    }

    /// @notice Mint `amount` to `member` without any issuance event.
    function silentMint(address member, uint256 amount) external {
        _mint(member, amount);
    }
}
