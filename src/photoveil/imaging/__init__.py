"""The image core: bytes in, bytes and face boxes out. Knows nothing of AWS jobs, queues or handlers
(tests/test_code_style.py keeps imports flowing one way)."""
