"""``workbench ui``."""

from __future__ import annotations


def ui(
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    auth: str | None = None,
    workspace: str | None = None,
    all_subjects: bool = False,
) -> int:
    """Start the browser app: upload photos, train, generate, evaluate, compare runs, run a blind test.

    It listens on 127.0.0.1 only. Serving on another address or through a public --share link needs a login
    (--auth, or $WORKBENCH_UI_AUTH), because the workspace holds people's face photos. Without a login (one
    researcher on this machine) every subject in the workspace is listed, those made with the CLI included;
    with --auth each login sees only the subjects it created, unless --all-subjects is given.

    Args:
        host: Address to listen on; anything but loopback needs --auth.
        port: Port to listen on.
        share: Also open a public Gradio share link (needs --auth and internet).
        auth: Login as user:password (several comma-separated), or @FILE with one user:password per line;
            default: $WORKBENCH_UI_AUTH.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
        all_subjects: Operator mode (with --auth): every login sees every subject in the workspace.
    """
    from workbench.ui.launch import launch
    from workbench.workspace import Workspace

    launch(
        Workspace.resolve(workspace), host=host, port=port, share=share, auth=auth, all_subjects=all_subjects
    )
    return 0
