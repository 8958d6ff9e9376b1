// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @notice What the round contract needs of the MemberRegistry.
interface IMemberRegistry {
    function isActive(address account) external view returns (bool);
}
