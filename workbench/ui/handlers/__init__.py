"""What each tab's buttons do, as plain functions of plain values: thin calls into the stages, no Gradio here.

One module per tab (``subject``, ``train``, ``generate``, ``evaluate``, ``blindtest``); the tabs in
:mod:`workbench.ui.tabs` bind them to components and tests call them directly. Every function that takes a
subject checks it through the :class:`~workbench.ui.sessions.Viewer` and raises
:class:`~workbench.errors.WorkbenchError` with the same sentence the CLI prints.
"""
