"""The one way a URL (or a message that may contain one) is made fit to print, store or log.

The password of the user info and the values of secret-looking query parameters become ``***``. The
TypeScript twin is ``src/redact.ts``; both follow docs/security.md and are tested on the same cases.
"""

from __future__ import annotations

import re

# The password runs to the last "@" before the host, so an unencoded "@" (or "/") inside it does not leak its
# tail; the username stays (it names the account, it does not open it).
_USER_INFO = re.compile(r"(//[^:/?#\s@]*):\S*?@(?=[^@/?#\s]*(?:[/?#\s]|$))")

# Parameter names whose value is a credential (libpq, JDBC, OAuth, signed cloud URLs, webhook tokens), also as
# the end of a longer name (db_password, sas_token).
_SECRET_NAMES = (
    "password|passwd|pwd|pass|sslpassword|token|access_token|refresh_token|id_token|auth_token|api_key|apikey|key|"
    "secret|client_secret|signature|sig|credential|x-amz-signature|x-amz-credential|x-amz-security-token|auth|"
    "authorization"
)
_SECRET_PARAM = re.compile(
    rf"(^|[?&;\s])((?:[\w.-]*[_.-])?(?:{_SECRET_NAMES}))=(\"[^\"]*\"|'[^']*'|[^&;#\s]*)", re.IGNORECASE
)


def redact_url(text: str) -> str:
    """``text`` with every URL password and secret query/connection parameter value replaced by ``***``."""
    return _SECRET_PARAM.sub(r"\1\2=***", _USER_INFO.sub(r"\1:***@", text))
