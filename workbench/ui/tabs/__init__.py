"""One module per tab: its layout, and thin Gradio glue that calls :mod:`workbench.ui.handlers`.

Each tab is a small class: ``layout()`` builds its components inside the app's ``gr.Tab``, ``wire()`` binds
their events, and the ``on_*`` methods are the event handlers (plain methods, so a test can call them the way
a button does, with a ``gr.Request``).
"""
