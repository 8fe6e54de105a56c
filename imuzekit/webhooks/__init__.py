"""Push for Mureka jobs: useapi.net's ``replyUrl``/``replyRef`` callbacks, received and confirmed.

useapi.net's creation endpoints (``POST /music/create``, ``create-advanced``,
``create-instrumental``) take ``replyUrl``, where it POSTs the job's record when the job is
created, completed or failed (the JSON of ``GET /jobs/{jobid}``), and ``replyRef``, a string it
passes back in those callbacks (as ``request.replyRef``).

`Webhooks` makes both for each creation and receives the callbacks:

    hooks = Webhooks(public_url="https://me.example/hooks/imuzekit")  # secret: random
    reply = hooks.reply()                       # Reply(url, ref) for one create
    hooks.register(jobid, reply.ref, confirm)   # once the create answered
    app.add_subapp("/hooks/imuzekit", hooks.app())      # aiohttp, or
    async with hooks.listen("0.0.0.0", 8080): ...        # standalone, or
    status = await hooks.handle(path, headers, body)     # any other framework

A callback is a hint, never a result. The ``replyRef`` is ``ik1.<issued>.<key>.<mac>``: an
HMAC-SHA256, with the secret, of a random key that stands for the job (the job id does not
exist before the create answers; registration binds the key to it). A callback whose reference
does not verify (compared in constant time), is too old, belongs to another job, names an
unknown job or is malformed is answered 4xx and changes nothing; an oversized one is refused
before it is read. A valid callback saying the job ended calls the job's confirmer, one
authenticated ``GET /jobs/{jobid}``, and only that answer can change the job. Duplicated, late,
replayed and out-of-order callbacks change nothing: a job being confirmed or settled ignores
them, ``created`` callbacks need no confirmation, and each job gets at most ``max_confirms``.
The secret appears in no repr, log line or answer.
"""

from imuzekit.webhooks._receiver import (
    TERMINAL_CLAIMS,
    Confirmer,
    Listener,
    Reply,
    Webhooks,
    WebhookStats,
)
from imuzekit.webhooks._refs import MAX_REF_LENGTH

__all__ = [
    "MAX_REF_LENGTH",
    "TERMINAL_CLAIMS",
    "Confirmer",
    "Listener",
    "Reply",
    "WebhookStats",
    "Webhooks",
]
