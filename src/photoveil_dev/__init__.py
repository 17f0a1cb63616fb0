"""Helpers only the tests and the benches use; src/Makefile packs only photoveil/, never this."""
