"""IMAP header fetch throughput of our client against imap-tools' own bulk fetch, on a real Dovecot.

Run: .venv/bin/python bench/imap_fetch_baseline.py [--messages 2000] [--rounds 3]

Starts its own Dovecot (tests/support/dovecot.py, needs root and the dovecot-imapd
package), appends N small messages (every fourth with a small PDF attachment), then
measures, interleaved over several rounds and keeping the best:

* `ImapConnection.fetch_summaries(uids, batch_size=200)`: one UID FETCH per 200
  messages of UID, size, flags, internal date, four header fields and BODYSTRUCTURE,
  decoded into MessageSummary (with the has-attachment hint);
* the same with one batch for all messages;
* imap-tools `MailBox.fetch(headers_only=True, mark_seen=False, bulk=True)`: one
  UID SEARCH ALL, then one UID FETCH of the whole header block of every message;
  iterated, and iterated while reading uid/subject/from_/date (the fields a
  summary has).

Also prints how long the Dovecot fixture takes to start and stop.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from imap_tools import MailBox  # noqa: E402

from emailsync.imap import ImapConnection, ImapSettings  # noqa: E402  (needs the project root on sys.path)
from tests.support.dovecot import DovecotServer, remove_server_files  # noqa: E402

USER, PASSWORD = "bench", "bench-password"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def small_message(number: int) -> bytes:
    """About 1 KB: a text body, every fourth message with a 100-byte PDF attachment."""
    message = EmailMessage()
    message["From"] = f"Supplier {number % 50} <billing{number % 50}@supplier.example>"
    message["To"] = "ap@buyer.example"
    message["Subject"] = f"Rechnung Nr. {number} für März"
    message["Message-ID"] = f"<bench-{number}@supplier.example>"
    message["Date"] = "Sat, 01 Mar 2025 09:30:00 +0100"
    message.set_content(f"Invoice {number} attached.\n" + "Lorem ipsum dolor sit amet. " * 20)
    if number % 4 == 0:
        message.add_attachment(PDF, maintype="application", subtype="pdf", filename=f"INV-{number}.pdf")
    return bytes(message)


def measure_fixture(rounds: int) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(rounds):
        began = time.perf_counter()
        server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-bench-")))
        server.start()
        starts.append(time.perf_counter() - began)
        began = time.perf_counter()
        server.stop()
        stops.append(time.perf_counter() - began)
        remove_server_files(server)
    return starts, stops


def run(messages: int, rounds: int) -> None:
    starts, stops = measure_fixture(rounds=5)
    print(
        f"Dovecot fixture start (incl. certificates, until IMAPS answers): "
        f"median {statistics.median(starts) * 1000:.0f} ms, max {max(starts) * 1000:.0f} ms (5 runs)"
    )
    print(f"Dovecot fixture stop (all processes gone): median {statistics.median(stops) * 1000:.0f} ms")

    server = DovecotServer(Path(tempfile.mkdtemp(prefix="apintake-dovecot-bench-")), with_plain_port=False)
    server.start()
    try:
        server.add_user(USER, PASSWORD)
        raw = [small_message(n) for n in range(messages)]
        began = time.perf_counter()
        uids = server.append_many(USER, "INBOX", raw, date=dt.datetime(2025, 3, 1, tzinfo=dt.UTC))
        print(
            f"appended {len(uids)} messages ({sum(map(len, raw)) / len(raw):.0f} bytes each on average) "
            f"in {time.perf_counter() - began:.1f} s"
        )
        settings = ImapSettings(
            host=server.host,
            port=server.port,
            username=USER,
            secret=PASSWORD,
            ca_file=server.ca_file,
            allow_private=True,
        )
        expected_with_pdf = sum(1 for n in range(messages) if n % 4 == 0)

        def ours(batch_size: int) -> Callable[[], int]:
            def fetch() -> int:
                with ImapConnection(settings) as connection:
                    connection.select_folder("INBOX")
                    found = connection.search_since(dt.date(2000, 1, 1))
                    summaries = list(connection.fetch_summaries(found, batch_size=batch_size))
                assert sum(s.has_candidate_attachment for s in summaries) == expected_with_pdf
                return len(summaries)

            return fetch

        def imap_tools(read_fields: bool) -> Callable[[], int]:
            def fetch() -> int:
                with MailBox(server.host, server.port, ssl_context=server.client_ssl_context()).login(
                    USER, PASSWORD, "INBOX"
                ) as mailbox:
                    count = 0
                    for message in mailbox.fetch(headers_only=True, mark_seen=False, bulk=True):
                        if read_fields:
                            _ = (message.uid, message.subject, message.from_, message.date, message.size)
                        count += 1
                return count

            return fetch

        candidates = {
            "ours: fetch_summaries, batches of 200": ours(200),
            f"ours: fetch_summaries, one batch of {messages}": ours(messages),
            "imap-tools: fetch(headers_only, bulk) iterated": imap_tools(False),
            "imap-tools: fetch(headers_only, bulk) + subject/from/date": imap_tools(True),
        }
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, fetch in candidates.items():  # interleaved, so drift affects all alike
                began = time.perf_counter()
                count = fetch()
                elapsed = time.perf_counter() - began
                assert count == messages, (name, count)
                best[name] = min(best.get(name, float("inf")), elapsed)
        print(f"\nheader fetch of {messages} messages, login to last message, best of {rounds} rounds:")
        for name, elapsed in best.items():
            print(f"  {name:<58} {messages / elapsed:8.0f} messages/s  ({elapsed * 1000:.0f} ms)")
    finally:
        server.stop()
        remove_server_files(server)


def main() -> None:
    """Parse the arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    run(arguments.messages, arguments.rounds)


if __name__ == "__main__":
    main()
