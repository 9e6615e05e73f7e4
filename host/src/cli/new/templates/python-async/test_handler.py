"""Tests of the handler, run with `python3 -m unittest`: no node needed."""

import asyncio
import unittest

from handler import process


class ProcessTest(unittest.TestCase):
    def test_uppercases_and_counts(self):
        self.assertEqual(asyncio.run(process({"text": "hi"})), {"text": "HI", "length": 2})

    def test_an_empty_payload_is_empty_text(self):
        self.assertEqual(asyncio.run(process({})), {"text": "", "length": 0})


if __name__ == "__main__":
    unittest.main()
