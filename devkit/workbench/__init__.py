"""A local web workbench: try the assistant as the LINE customer and the Slack agent side
by side (through the real gateway and the LINE/Slack emulators), label the messages the
bot misunderstood into the training data, and see how cases ended. See docs/workbench.md.
"""
