"""Typed ARI errors: each names the request, Asterisk's message, and what the status usually means."""

from __future__ import annotations


class AriError(Exception):
    """An ARI request failed. `status` is the HTTP status (None when no response came back)."""

    retryable = False
    hint = ""

    def __init__(self, status: int | None, method: str, path: str, message: str = "") -> None:
        self.status = status
        self.method = method
        self.path = path
        self.message = message
        text = f"ARI {method} {path} failed"
        if status is not None:
            text += f" with {status}"
        if message:
            text += f": {message}"
        hint = self.hint_for(path)
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    def hint_for(self, path: str) -> str:
        return self.hint


class AriBadRequest(AriError):
    hint = "a required parameter is missing or a value is invalid; check the call's arguments"


class AriAuthError(AriError):
    hint = (
        "check the ari.conf user and password given to AriClient; 403 on a write means the user is "
        "read_only or an ACL denies this host"
    )


class AriNotFound(AriError):
    def hint_for(self, path: str) -> str:
        if path.startswith("/channels/"):
            return "the channel does not exist: usually it has already hung up"
        if path.startswith("/bridges/"):
            return "the bridge does not exist: it was destroyed or never created"
        if path.startswith("/playbacks/"):
            return "the playback does not exist: it has finished or was stopped"
        if path.startswith("/recordings/"):
            return "no such recording: a live one has ended, or the stored name is wrong"
        if path.startswith("/asterisk/modules/"):
            return "the module is not loaded"
        return "the resource does not exist"


class AriConflict(AriError):
    hint = (
        "the resource is in a conflicting state: usually the channel is not in our Stasis "
        "application (it left it or never entered), or the id or recording name already exists"
    )


class AriPreconditionFailed(AriError):
    hint = "the channel is in a state that does not allow this operation (e.g. it is hanging up)"


class AriUnprocessable(AriError):
    hint = (
        "Asterisk understood the request but cannot act on it: unknown media format, channel not in "
        "this bridge or not (yet) in Stasis, or endpoint type mismatch"
    )


class AriNotImplemented(AriError):
    hint = (
        "this Asterisk does not support the request; for externalMedia use rtp+udp, "
        "audiosocket+tcp or none+websocket (websocket needs 20.16 / 21.11 / 22.6 / 23.0+)"
    )


class AriServerError(AriError):
    retryable = True
    hint = "Asterisk reported an internal error; safe to retry for reads"


class AriConnectionError(AriError):
    """No HTTP response: Asterisk is down, unreachable, or the request timed out."""

    retryable = True
    hint = "is Asterisk running, is http.conf enabled and is base_url right?"


_BY_STATUS: dict[int, type[AriError]] = {
    400: AriBadRequest,
    401: AriAuthError,
    403: AriAuthError,
    404: AriNotFound,
    409: AriConflict,
    412: AriPreconditionFailed,
    422: AriUnprocessable,
    501: AriNotImplemented,
}


def error_for_status(status: int, method: str, path: str, message: str = "") -> AriError:
    """The typed error for an HTTP error status (any other 5xx → AriServerError)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = AriServerError if status >= 500 else AriError
    return cls(status, method, path, message)
