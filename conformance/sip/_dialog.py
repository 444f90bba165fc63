"""Dialogs (RFC 3261 §12): identity, state, route set, remote target and CSeq bookkeeping, sans-I/O.

A :class:`Dialog` is made from a dialog-creating response on the UAC side (:meth:`Dialog.from_response`,
§12.1.2) or from the request on the UAS side (:meth:`Dialog.from_request`, §12.1.1). A :class:`DialogSet` keeps the
dialogs one INVITE gives rise to when it forks: one per To tag (§13.2.2.4).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from ._build import build_request
from ._headers import NameAddr
from ._message import Message, Request, Response
from ._uri import SipURI

__all__ = [
    "DialogState",
    "DialogId",
    "DialogError",
    "Rejection",
    "Dialog",
    "DialogSet",
    "TARGET_REFRESH_METHODS",
    "dialog_id_of",
]

#: Requests that update the remote target (RFC 3261 §12.2: re-INVITE; RFC 3311 UPDATE; RFC 6665 SUBSCRIBE, NOTIFY).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})


class DialogState(StrEnum):
    """§12: "A dialog can also be in the "early" state ... and then transition to the "confirmed" state"."""

    EARLY = "EARLY"
    CONFIRMED = "CONFIRMED"
    TERMINATED = "TERMINATED"


class DialogError(ValueError):
    """The message cannot create (or does not belong to) this dialog."""


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: "A dialog is identified at each UA with a dialog ID, which consists of a Call-ID value, a local tag and a
    remote tag." A missing tag (RFC 2543 peers) is ``None``."""

    call_id: str
    local_tag: str | None
    remote_tag: str | None

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


def dialog_id_of(message: Message) -> DialogId | None:
    """The dialog ID of a message *received* (§12): for a request local = To tag, remote = From tag (the UAS rule);
    for a response local = From tag, remote = To tag (the UAC rule). ``None`` without Call-ID."""
    call_id = message.call_id
    if call_id is None:
        return None
    from_tag = message.from_.tag if message.from_ else None
    to_tag = message.to.tag if message.to else None
    if isinstance(message, Request):
        return DialogId(call_id, to_tag, from_tag)
    return DialogId(call_id, from_tag, to_tag)


@dataclass(frozen=True, slots=True)
class Rejection:
    """The response a UAS must send instead of processing a request, and why."""

    status: int
    reason: str
    section: str


_RE_TAG_PARAM = re.compile(r";[ \t]*tag[ \t]*=[ \t]*[^; \t,]+", re.I)


def _party(na: NameAddr) -> str:
    """A From/To value without its tag, for re-use in later requests (§12.2.1.1 keeps the URI, not the tag)."""
    params = _RE_TAG_PARAM.sub("", na.params_text)
    display = f"{na.display_raw} " if na.display_raw else ""
    return f"{display}<{na.uri_text}>{params}"


def _with_tag(party: str, tag: str | None) -> str:
    return party if tag is None else f"{party};tag={tag}"


def _is_loose(route: str) -> bool:
    """The route entry's URI carries ``lr`` (§19.1.1, §16.12)."""
    uri = _route_uri(route)
    parsed = _parse(uri)
    if isinstance(parsed, SipURI):
        return parsed.param("lr") is not None
    return bool(re.search(r";\s*lr(?:[;=?>]|$)", uri, re.I))


def _route_uri(route: str) -> str:
    m = re.search(r"<([^>]*)>", route)
    return m.group(1) if m else route.split(";", 1)[0].strip()


def _parse(uri: str) -> object:
    from ._uri import parse_uri

    return parse_uri(uri)[0]


def _request_uri_from_route(uri: str) -> str:
    """§12.2.1.1: "stripping any parameters that are not allowed in a Request-URI" (the ``method`` parameter and URI
    headers, §19.1.1 Table 1)."""
    uri = uri.split("?", 1)[0]
    return re.sub(r";\s*method=[^;]*", "", uri, flags=re.I)


class Dialog:
    """One dialog's state (§12): ID, state, local/remote URI, remote target, route set, CSeqs, secure flag."""

    def __init__(
        self,
        *,
        id: DialogId,
        role: str,
        state: DialogState,
        local_party: str,
        remote_party: str,
        remote_target: str,
        route_set: Iterable[str],
        local_cseq: int | None,
        remote_cseq: int | None,
        secure: bool = False,
        local_contact: str | None = None,
        invite_cseq: int | None = None,
    ) -> None:
        self.id = id
        #: ``"UAC"`` or ``"UAS"``: the role this UA had in the transaction that created the dialog.
        self.role = role
        self.state = state
        #: The From (UAC) / To (UAS) value of the creating request, without tag: the local URI and display name.
        self.local_party = local_party
        self.remote_party = remote_party
        #: §12: "the URI from the Contact header field" of the peer.
        self.remote_target = remote_target
        #: Route entries (name-addr text with all parameters), in the order requests must carry them.
        self.route_set: tuple[str, ...] = tuple(route_set)
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.secure = secure
        #: The Contact to put in target refresh requests we send (§12.2.1.1 "SHOULD include a Contact").
        self.local_contact = local_contact
        #: CSeq number of the request that created the dialog (its ACK and CANCEL carry it).
        self.invite_cseq = invite_cseq

    # -- creation ------------------------------------------------------------------------------------------------
    @classmethod
    def from_response(
        cls,
        request: Request,
        response: Response,
        *,
        secure_transport: bool = False,
        local_contact: str | None = None,
    ) -> Dialog:
        """UAC side, §12.1.2, from a 101-199 response with a To tag or a 2xx to a dialog-creating request.

        "The route set MUST be set to the list of URIs in the Record-Route header field from the response, taken in
        reverse order and preserving all URI parameters." "The remote target MUST be set to the URI from the Contact
        header field of the response." "The local sequence number MUST be set to the value of the sequence number in
        the CSeq header field of the request. The remote sequence number MUST be empty".
        """
        status = response.status
        to_tag = response.to.tag if response.to else None
        if not (101 <= status < 300) or (status < 200 and to_tag is None):
            raise DialogError(f"a {status} response{'' if to_tag else ' without To tag'} does not create a dialog")
        if request.from_ is None or request.to is None or request.cseq is None or request.call_id is None:
            raise DialogError("the request lacks From, To, CSeq or Call-ID")
        if response.call_id != request.call_id:
            raise DialogError("the response's Call-ID is not the request's")
        target = response.contact[0].uri_text if response.contact else request.uri_text
        return cls(
            id=DialogId(request.call_id, request.from_.tag, to_tag),
            role="UAC",
            state=DialogState.CONFIRMED if status >= 200 else DialogState.EARLY,
            local_party=_party(request.from_),
            remote_party=_party(request.to),
            remote_target=target,
            route_set=[na.raw for na in reversed(response.record_route)],
            local_cseq=request.cseq.number,
            remote_cseq=None,
            secure=secure_transport and request.uri_text.lower().startswith("sips:"),
            local_contact=local_contact or (request.contact[0].raw if request.contact else None),
            invite_cseq=request.cseq.number,
        )

    @classmethod
    def from_request(
        cls,
        request: Request,
        local_tag: str,
        *,
        early: bool = False,
        secure_transport: bool = False,
        local_contact: str | None = None,
    ) -> Dialog:
        """UAS side, §12.1.1, when answering ``request`` with a 1xx (``early``) or 2xx carrying To tag ``local_tag``.

        "The route set MUST be set to the list of URIs in the Record-Route header field from the request, taken in
        order and preserving all URI parameters." "The remote sequence number MUST be set to the value of the
        sequence number in the CSeq header field of the request. The local sequence number MUST be empty."
        """
        if request.from_ is None or request.to is None or request.cseq is None or request.call_id is None:
            raise DialogError("the request lacks From, To, CSeq or Call-ID")
        if not request.contact:
            raise DialogError("a dialog-creating request must carry a Contact (§8.1.1.8)")
        return cls(
            id=DialogId(request.call_id, local_tag, request.from_.tag),
            role="UAS",
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
            local_party=_party(request.to),
            remote_party=_party(request.from_),
            remote_target=request.contact[0].uri_text,
            route_set=[na.raw for na in request.record_route],
            local_cseq=None,
            remote_cseq=request.cseq.number,
            secure=secure_transport and request.uri_text.lower().startswith("sips:"),
            local_contact=local_contact,
            invite_cseq=request.cseq.number,
        )

    # -- queries -------------------------------------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.id.call_id

    @property
    def local_tag(self) -> str | None:
        return self.id.local_tag

    @property
    def remote_tag(self) -> str | None:
        return self.id.remote_tag

    @property
    def local_uri(self) -> str:
        return _route_uri(self.local_party)

    @property
    def remote_uri(self) -> str:
        return _route_uri(self.remote_party)

    @property
    def early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def confirmed(self) -> bool:
        return self.state is DialogState.CONFIRMED

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def matches(self, message: Message) -> bool:
        """The message received belongs to this dialog (see :func:`dialog_id_of`)."""
        return dialog_id_of(message) == self.id

    def __repr__(self) -> str:
        return f"<Dialog {self.role} {self.state.value} {self.id}>"

    # -- sending requests ----------------------------------------------------------------------------------------
    def next_cseq(self) -> int:
        """§12.2.1.1: increment the local sequence number, choosing one (< 2**31, §8.1.1.5) when it is empty."""
        if self.local_cseq is None:
            self.local_cseq = secrets.randbelow(2**31 - 1) + 1
        else:
            self.local_cseq += 1
        return self.local_cseq

    def request_uri_and_route(self) -> tuple[str, list[str]]:
        """§12.2.1.1: the Request-URI and Route values for a request in this dialog (loose or strict routing)."""
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if _is_loose(first):
            return self.remote_target, list(self.route_set)
        # "If the route set is not empty, and its first URI does not contain the lr parameter, the UAC MUST place the
        # first URI from the route set into the Request-URI, stripping any parameters that are not allowed in a
        # Request-URI. The UAC MUST add a Route header field containing the remainder of the route set values in
        # order, including all parameters. The UAC MUST then place the remote target URI into the Route header field
        # as the last value."
        return _request_uri_from_route(_route_uri(first)), [*self.route_set[1:], f"<{self.remote_target}>"]

    def create_request(
        self,
        method: str,
        *,
        via: str,
        cseq: int | None = None,
        contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
        max_forwards: int = 70,
    ) -> Request:
        """A request within this dialog (§12.2.1.1), with the next local CSeq unless ``cseq`` is given.

        Target refresh requests get a Contact (``contact`` or the dialog's local Contact). ACK for a 2xx is
        :meth:`create_ack` (it keeps the INVITE's CSeq); CANCEL is built from the INVITE (:func:`build_cancel`).
        """
        if method in ("ACK", "CANCEL"):
            raise DialogError(
                f"{method} keeps the CSeq of the request it acknowledges or cancels: use create_ack or build_cancel"
            )
        if self.terminated:
            raise DialogError("the dialog is terminated")
        if cseq is None:
            number = self.next_cseq()
        else:
            number = cseq
            self.local_cseq = cseq
        if contact is None and method in TARGET_REFRESH_METHODS:
            contact = self.local_contact
        return self._build(method, number, via, contact, headers, body, content_type, max_forwards)

    def create_ack(
        self,
        invite: Request,
        *,
        via: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """The ACK for a 2xx to ``invite`` (§13.2.2.4).

        "The header fields of the ACK are constructed in the same way as for any request sent within a dialog (see
        Section 12) with the exception of the CSeq and the header fields related to authentication. The sequence
        number of the CSeq header field MUST be the same as the INVITE being acknowledged, but the CSeq method MUST
        be ACK. The ACK MUST contain the same credentials as the INVITE."
        """
        if invite.cseq is None:
            raise DialogError("the INVITE has no CSeq")
        creds = [(h.name, h.value) for h in invite.headers if h.key in ("authorization", "proxy-authorization")]
        max_forwards = invite.max_forwards if invite.max_forwards is not None else 70
        return self._build("ACK", invite.cseq.number, via, None, [*creds, *headers], body, content_type, max_forwards)

    def _build(
        self,
        method: str,
        cseq: int,
        via: str,
        contact: str | None,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        content_type: str | None,
        max_forwards: int,
    ) -> Request:
        uri, routes = self.request_uri_and_route()
        return build_request(
            method,
            uri,
            from_=_with_tag(self.local_party, self.local_tag),
            to=_with_tag(self.remote_party, self.remote_tag),
            via=via,
            call_id=self.call_id,
            cseq=cseq,
            max_forwards=max_forwards,
            contact=contact,
            route=routes,
            headers=headers,
            body=body,
            content_type=content_type,
        )

    # -- receiving -----------------------------------------------------------------------------------------------
    def receive_request(self, request: Request) -> Rejection | None:
        """UAS processing of a request in this dialog (§12.2.2); ``None`` when it may be processed.

        "If the remote sequence number was not empty, but the sequence number of the request is lower than the
        remote sequence number, the request is out of order and MUST be rejected with a 500 (Server Internal Error)
        response." Otherwise the remote CSeq is updated, a target refresh request's Contact replaces the remote
        target, and a BYE terminates the dialog. ACK and CANCEL carry the number of the request they belong to and
        do not move the remote CSeq. A rejected request changes nothing ("If the request is rejected, none of the
        state changes are performed").
        """
        if not self.matches(request):
            return Rejection(481, "Call/Transaction Does Not Exist", "RFC 3261 §12.2.2")
        cseq = request.cseq
        if cseq is None:
            return Rejection(400, "Bad Request", "RFC 3261 §8.1.1.5")
        if request.method in ("ACK", "CANCEL"):
            return None
        if self.remote_cseq is not None and cseq.number < self.remote_cseq:
            return Rejection(500, "Server Internal Error", "RFC 3261 §12.2.2")
        self.remote_cseq = cseq.number
        if request.method in TARGET_REFRESH_METHODS and request.contact:
            self.remote_target = request.contact[0].uri_text
        if request.method == "BYE":
            self.state = DialogState.TERMINATED
        return None

    def receive_response(self, response: Response, request: Request | None = None) -> None:
        """UAC processing of a response to a request of ours in this dialog (§12.2.1.2, §13.2.2.4).

        A 2xx to the creating INVITE confirms an early dialog and recomputes its route set; a 2xx to a target
        refresh request replaces the remote target with its Contact; a 481 or 408 terminates the dialog; a
        300-699 to the creating INVITE terminates an early dialog (§12.3).
        """
        cseq = response.cseq
        if cseq is None:
            return
        status = response.status
        creating = cseq.method == "INVITE" and cseq.number == self.invite_cseq and self.role == "UAC"
        if 200 <= status < 300:
            if creating and self.state is DialogState.EARLY:
                # §13.2.2.4: "the dialog MUST be transitioned to the "confirmed" state, and the route set for the
                # dialog MUST be recomputed based on the 2xx response".
                self.state = DialogState.CONFIRMED
                self.route_set = tuple(na.raw for na in reversed(response.record_route))
            if cseq.method in TARGET_REFRESH_METHODS and response.contact:
                self.remote_target = response.contact[0].uri_text
        elif status in (408, 481) and not creating:
            self.state = DialogState.TERMINATED
        elif status >= 300 and creating and self.state is DialogState.EARLY:
            self.state = DialogState.TERMINATED

    def confirm(self) -> None:
        """UAS: the 2xx has been sent (§12.1.1); an early dialog becomes confirmed."""
        if self.state is DialogState.EARLY:
            self.state = DialogState.CONFIRMED

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED


class DialogSet:
    """The dialogs created by the responses to one request, one per To tag (forking, §12.1.2, §13.2.2.4).

    "Multiple 2xx responses may arrive at the UAC for a single INVITE request due to a forking proxy. Each response
    is distinguished by the tag parameter in the To header field, and each represents a distinct dialog, with a
    distinct dialog identifier."
    """

    def __init__(self, request: Request, *, secure_transport: bool = False, local_contact: str | None = None):
        self.request = request
        self.secure_transport = secure_transport
        self.local_contact = local_contact
        self._dialogs: dict[str | None, Dialog] = {}
        #: The final non-2xx status that ended the set's early dialogs, if any.
        self.failed: int | None = None

    def receive_response(self, response: Response) -> Dialog | None:
        """Create or update the dialog of this response; ``None`` when it belongs to none (100, no tag, failure).

        §13.2.2.1: "If a provisional response has a tag in the To field, and if the dialog ID of the response does
        not match an existing dialog, one is constructed using the procedures defined in Section 12.1.2."
        §13.2.2.3: "All early dialogs are considered terminated upon reception of the non-2xx final response."
        """
        status = response.status
        tag = response.to.tag if response.to else None
        if status >= 300:
            self.failed = status
            self.terminate_early()
            return None
        if status == 100 or (status < 200 and tag is None):
            return None
        dialog = self._dialogs.get(tag)
        if dialog is None:
            dialog = Dialog.from_response(
                self.request, response, secure_transport=self.secure_transport, local_contact=self.local_contact
            )
            self._dialogs[tag] = dialog
        else:
            dialog.receive_response(response, self.request)
        return dialog

    def terminate_early(self) -> list[Dialog]:
        """Terminate the dialogs still early (§13.2.2.3, and 64*T1 after the first 2xx, §13.2.2.4)."""
        ended = [d for d in self._dialogs.values() if d.state is DialogState.EARLY]
        for dialog in ended:
            dialog.terminate()
        return ended

    def get(self, remote_tag: str | None) -> Dialog | None:
        return self._dialogs.get(remote_tag)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(self._dialogs.values())

    def __len__(self) -> int:
        return len(self._dialogs)

    @property
    def confirmed(self) -> list[Dialog]:
        return [d for d in self._dialogs.values() if d.state is DialogState.CONFIRMED]
