// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What the registry and the round contract need of the ContributionToken.
interface IContributionToken {
    function reserve(uint256 requested) external returns (uint256 epoch, uint256 granted);

    function mintAllocation(address member, uint256 epoch, uint256 amount, bytes32 ref) external;

    function grantWelcome(address member) external;

    function reservable(uint256 requested) external view returns (uint256 epoch, uint256 granted);
}
