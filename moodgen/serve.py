"""`python -m moodgen.serve`: the mood picker, a local web page that composes a piece per click.

The page and its API live in moodgen/web/ (its docstring says why FastAPI rather than Gradio).
"""

from __future__ import annotations

import logging
import socket

from omegaconf import DictConfig

from .cli import hydra_entry
from .errors import MoodgenError

log = logging.getLogger("moodgen")


def listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before the model loads: a port in use is one line at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MoodgenError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port with port=<number>"
        ) from None
    return sock


def serve(cfg: DictConfig) -> None:
    sock = listening_socket(cfg.host, cfg.port)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("listening on %s: anyone who can reach this computer can compose and download pieces", cfg.host)

    import uvicorn

    from .web.app import create_app
    from .web.studio import Studio

    studio = Studio(cfg)
    bundle = studio.model()
    if bundle is None:
        print(f"moodgen: no model yet, the page says how to train one ({studio.problem})", flush=True)
    else:
        why = f"; {bundle.picked}" if bundle.picked else ""
        name = f"{bundle.run_name}{why}"
        print(f"moodgen: composing with model run {bundle.run_id} ({name}), steering={cfg.steering.name}", flush=True)
    host, port = sock.getsockname()[:2]
    address = f"[{host}]" if ":" in host else host
    print(f"moodgen: mood picker at http://{address}:{port}  (Ctrl-C stops it)", flush=True)
    uvicorn.Server(uvicorn.Config(create_app(studio), log_level="warning")).run(sockets=[sock])


main = hydra_entry("serve", serve)

if __name__ == "__main__":
    main()
