"""The composition root, above the core and everything around it.

`paybot.app` wires the core (`bot`), the handlers, a store implementation and the
sandbox together; `paybot.cli` is the `paybot` command; `paybot.demo` the console
demo. Nothing below this package imports it.
"""
