"""The Projects view (Gradio): open or make a project, browse, classes, transfer."""
