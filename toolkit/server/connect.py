"""Server URLs as rbkit prints them: never with a password."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

URL_SCHEMES = ("redis://", "rediss://", "unix://")


def is_url(spec: str) -> bool:
    return spec.lower().startswith(URL_SCHEMES)


def safe_url(url: str, mask: str = "") -> str:
    """``url`` without its password (in the userinfo or a ``password=`` query parameter).

    With ``mask`` the userinfo keeps a placeholder where the password was
    (``redis://:***@host``), so a reader sees that one was given.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("@")[-1] if "@" in url else url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password = userinfo.split(":", 1)[0], ":" in userinfo
        if mask and has_password:
            user = f"{user}:{mask}"
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "password"]
        query = urlencode(kept)
    out = f"{parts.scheme}://{netloc}{parts.path}"
    return out + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")
