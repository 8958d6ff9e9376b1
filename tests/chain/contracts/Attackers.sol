// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IContributionToken} from "contracts/interfaces/IContributionToken.sol";

/// @title Reenterer (test only)
/// @notice A hostile participant: a contract that acts as a member (through `exec`) and, whenever
/// it is called back (`poke`, or any unexpected callback through `fallback`/`receive`), makes the
/// calls it was armed with, once, recording each outcome instead of reverting, so a test can read
/// which re-entries the suite refused and with which error.
contract Reenterer {
    address[] private _targets;
    bytes[] private _payloads;
    bool public armed;
    /// @notice How many times the armed calls were made.
    uint256 public attempts;
    /// @notice How many callbacks reached `fallback` or `receive` (hooks the suite should never make).
    uint256 public callbacks;
    bool[] private _ok;
    bytes[] private _results;

    /// @notice Arm the calls to make on the next callback.
    function arm(address[] calldata targets, bytes[] calldata payloads) external {
        delete _targets;
        delete _payloads;
        for (uint256 i = 0; i < targets.length; ++i) {
            _targets.push(targets[i]);
            _payloads.push(payloads[i]);
        }
        armed = true;
    }

    /// @notice The callback under test: make the armed calls once (never recursively).
    function poke() public {
        if (!armed) return;
        armed = false;
        attempts += 1;
        delete _ok;
        delete _results;
        for (uint256 i = 0; i < _targets.length; ++i) {
            // slither-disable-next-line low-level-calls
            (bool ok, bytes memory result) = _targets[i].call(_payloads[i]);
            _ok.push(ok);
            _results.push(result);
        }
    }

    /// @notice Outcome of the `i`-th armed call in the last attempt: success and return or revert data.
    function outcome(uint256 i) external view returns (bool ok, bytes memory result) {
        return (_ok[i], _results[i]);
    }

    /// @notice Act as this contract (a member, a voter, a claimant); reverts bubble up unchanged.
    function exec(address to, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory result) = to.call(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }

    fallback() external payable {
        callbacks += 1;
        poke();
    }

    receive() external payable {
        callbacks += 1;
        poke();
    }
}

/// @title HostileToken (test only)
/// @notice An IContributionToken that calls `hook.poke()` at the start of every call the round
/// contract and the registry make into it: every callback path of RoundManager and MemberRegistry,
/// hostile. It reserves whatever is asked (one epoch, 0) and records what it is asked to mint.
contract HostileToken is IContributionToken {
    Reenterer public hook;
    uint256 public reservations;
    uint256 public reservedTotal;
    uint256 public mints;
    uint256 public welcomes;
    mapping(address member => uint256) public minted;

    function setHook(Reenterer hook_) external {
        hook = hook_;
    }

    function reserve(uint256 requested) external returns (uint256 epoch, uint256 granted) {
        _callBack();
        reservations += 1;
        reservedTotal += requested;
        return (0, requested);
    }

    function mintAllocation(address member, uint256, uint256 amount, bytes32) external {
        _callBack();
        mints += 1;
        minted[member] += amount;
    }

    function grantWelcome(address) external {
        _callBack();
        welcomes += 1;
    }

    function reservable(uint256 requested) external pure returns (uint256 epoch, uint256 granted) {
        return (0, requested);
    }

    function _callBack() private {
        if (address(hook) != address(0)) hook.poke();
    }
}

/// @title ForceSend (test only)
/// @notice Gives `to` the ether sent with the deployment even when `to` refuses ether (a contract
/// without `receive`): lets a test simulate calls from a contract's address with `eth_call`.
contract ForceSend {
    constructor(address payable to) payable {
        selfdestruct(to);
    }
}
