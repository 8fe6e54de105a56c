"""What every emulated provider shares, so that each provider package holds only its own rules.

Pure modules (no aiohttp; the provider states build on them):

- `provider`: `Credentials`, `ApiError` and the `Provider` / `ExtraUrls` protocols;
- `accounts`: the demo email and password, `User` and the `Accounts` registry;
- `timing`: `RenderSeconds`, its check, and the draw of one render time;
- `media`: `AudioStore`, the shared cache of silent MP3s, and the 1x1 cover image.

HTTP modules (aiohttp):

- `http`: JSON answers and errors, JSON bodies, CDN-style byte serving, small request helpers;
- `routes`: `Route`, a route table as data, `StateKey` and `build_app` which reads the table;
- `root`: the root application every provider is mounted on (faults, JSON errors, the log).

This package imports nothing itself, so importing a pure module never loads aiohttp.
"""
