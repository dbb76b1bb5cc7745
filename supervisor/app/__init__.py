"""Programs built on the library: the command line (``python -m supervisor``) and the demo.

What may live here: programs that use the public API. What may not: anything the library needs;
nothing outside this package imports it.
"""
