"""The scripted peer test authors use: open endpoints, build and send messages (or raw bytes), expect messages
with matchers and timeouts, run client transactions, misbehave on purpose, and record everything in one trace."""

from ._calls import CallResult, place_call, run_calls
from ._core import AsyncPeer, ClientTransactionHandle, ExpectationFailed, Incoming, PeerError
from ._faults import DROP, DUPLICATE, Fault, corrupt_bytes, with_cseq, with_rack, with_wrong_branch, with_wrong_tag
from ._match import Matcher, any_message, request, response
from ._sync import Peer

__all__ = [
    "CallResult",
    "place_call",
    "run_calls",
    "DROP",
    "DUPLICATE",
    "AsyncPeer",
    "ClientTransactionHandle",
    "ExpectationFailed",
    "Fault",
    "Incoming",
    "Matcher",
    "Peer",
    "PeerError",
    "any_message",
    "corrupt_bytes",
    "request",
    "response",
    "with_cseq",
    "with_rack",
    "with_wrong_branch",
    "with_wrong_tag",
]
