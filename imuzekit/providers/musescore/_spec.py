"""MuseScore.com declared once: its config (OAuth 1.0), connection, upload jobs and upload call.

Uploads carry no marker, so an upload cannot be found again after a crash (`find_created` is
None).
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from imuzekit.jobs import PollPolicy
from imuzekit.providers._spec import (
    Connected,
    Connection,
    CreateCall,
    FieldSpec,
    ProviderConfig,
    ProviderSpec,
    driver_kind,
    secret_field,
    text_field,
    url_field,
)
from imuzekit.providers.musescore import MuseScoreAPI, _api
from imuzekit.providers.musescore._oauth import OAuth1Credentials, OAuth1Hook

__all__ = ["MuseScoreConfig", "spec"]


@attrs.frozen
class MuseScoreConfig(ProviderConfig):
    """MuseScore.com OAuth 1.0 credentials and endpoints.

    A `consumer_key` alone allows public calls; signed calls need `consumer_secret`, and a
    user's calls also `token` and `token_secret` (from the three-legged flow).
    """

    CREDENTIALS: ClassVar[tuple[tuple[str, ...], ...]] = (("consumer_key",),)
    SUGGESTED: ClassVar[tuple[str, ...]] = ("consumer_secret",)

    consumer_key: str | None = text_field()
    consumer_secret: str | None = secret_field()
    token: str | None = secret_field()
    token_secret: str | None = secret_field()
    base_url: str = url_field("http://api.musescore.com/services/rest")
    oauth_url: str = url_field("http://api.musescore.com/oauth")
    authorize_url: str = url_field("http://musescore.com/oauth/authorize")
    static_url: str = url_field("http://static.musescore.com")
    oembed_url: str = url_field("http://musescore.com/oembed/endpoint")
    poll: PollPolicy | None = None


def _connect(config: MuseScoreConfig, connection: Connection) -> Connected:
    assert config.consumer_key is not None
    hook = connection.auth or OAuth1Hook(
        OAuth1Credentials(
            consumer_key=config.consumer_key,
            consumer_secret=config.consumer_secret,
            token=config.token,
            token_secret=config.token_secret,
        )
    )
    api = MuseScoreAPI(
        sender=connection.sender,
        hook=hook,
        base_url=config.base_url,
        oauth_url=config.oauth_url,
        authorize_url=config.authorize_url,
        static_url=config.static_url,
        oembed_url=config.oembed_url,
        poller=connection.poller,
        poll_policy=connection.poll_policy,
    )
    return Connected(api, hook)


def _emulator_config(emulator: Any) -> MuseScoreConfig:
    site = emulator.musescore
    urls = emulator.urls
    return MuseScoreConfig(
        consumer_key=site.consumer_key,
        consumer_secret=site.consumer_secret,
        token=site.token,
        token_secret=site.token_secret,
        base_url=urls["musescore"],
        oauth_url=urls["musescore_oauth"],
        authorize_url=urls["musescore_authorize"],
        static_url=urls["musescore_static"],
        oembed_url=urls["musescore_oembed"],
    )


def spec() -> ProviderSpec:
    """The MuseScore.com provider."""
    upload = CreateCall(
        kind="upload",
        method="scores.upload",
        description="kit.musescore.scores.upload(): a .mscz score uploaded to MuseScore.com.",
        fields=(
            FieldSpec("file", "string", "Path of the .mscz file.", required=True),
            FieldSpec(
                "title", "string", "Score title.", required=True, max_length=_api.MAX_UPLOAD_TITLE
            ),
            FieldSpec(
                "description", "string", "Description.", max_length=_api.MAX_UPLOAD_DESCRIPTION
            ),
            FieldSpec("private", "boolean", "Visible only to you."),
            FieldSpec("license", "string", "Licence of the score."),
            FieldSpec("tags", "tags", "Tags.", max_length=_api.MAX_UPLOAD_TAG),
        ),
        # An upload makes no new file to download: a batch manifest does not take it.
        outputs=None,
    )
    return ProviderSpec(
        name=_api.PROVIDER,
        title="MuseScore.com",
        config=MuseScoreConfig,
        connect=_connect,
        job_kinds=(driver_kind(_api.ScoreDriver),),
        creates=(upload,),
        converter_hooks=(_api.configure_converter,),
        emulator_config=_emulator_config,
    )
