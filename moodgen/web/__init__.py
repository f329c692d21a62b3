"""The mood picker: one local web page that composes a piece in the mood you click.

Built on FastAPI + uvicorn rather than Gradio: the page is one small hand-written HTML/JS/CSS file
set shipped in the package, so there is no heavy frontend bundle to install or load, we control
every element of the one page (four mood buttons, a length control, a player, a history), and it
works fully offline: no CDN, fonts or other external assets, and no API docs page that would
fetch its scripts from the internet.
"""
