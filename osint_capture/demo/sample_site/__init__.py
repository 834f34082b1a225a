"""The bundled sample post site: ``osint-capture demo`` target and the browser tests' fixture.

Everything is served from 127.0.0.1 (or the host given) and generated
deterministically; see :mod:`osint_capture.demo.sample_site.server` for the endpoints.
"""

from osint_capture.demo.sample_site.server import (
    CHUNKED_SENTENCE,
    COMMENT_PAGES,
    COMMENTS_PER_PAGE,
    DEFAULT_MEDIA_MIB,
    GZIP_SENTENCE,
    INDEX_LINKS,
    MAX_MEDIA_MIB,
    POST_ARABIC,
    POST_AUTHOR,
    POST_HEADLINE,
    POST_PUBLISHED,
    POST_TEXT,
    ROBOTS_TXT,
    SampleSite,
    expected_media_sha256,
)

__all__ = [
    "CHUNKED_SENTENCE",
    "COMMENTS_PER_PAGE",
    "COMMENT_PAGES",
    "DEFAULT_MEDIA_MIB",
    "GZIP_SENTENCE",
    "INDEX_LINKS",
    "MAX_MEDIA_MIB",
    "POST_ARABIC",
    "POST_AUTHOR",
    "POST_HEADLINE",
    "POST_PUBLISHED",
    "POST_TEXT",
    "ROBOTS_TXT",
    "SampleSite",
    "expected_media_sha256",
]
