"""Messages between the continuum rank and the atomistic groups, without busy waiting.

MPICH's blocking receives and collectives spin a core while they wait; on a machine with
fewer cores than ranks (and with one group idle while another relaxes) that steals the time
LAMMPS needs.  So every wait here polls a non-blocking test (a matched probe, MPI_Improbe,
which also sizes the receive for pickled messages of any length; or MPI_Test on an
Ibarrier/Isend) and sleeps between tests, from 0.1 ms up to 2 ms: a few ms of latency
per exchange against increments of a second or more.
"""

from __future__ import annotations

import time

TAG_COMMAND = 701   # continuum -> group root: a messages.Command
TAG_REPLY = 702     # group root -> continuum: a messages.Reply
POLL_MIN, POLL_MAX = 1e-4, 2e-3  # s


class ExchangeTimeout(RuntimeError):
    """No answer within the deadline; ``pending`` lists what did not answer."""

    def __init__(self, message: str, pending: list):
        super().__init__(message)
        self.pending = pending


def poll(test, deadline: float | None = None, what: str = "a message"):
    """Call ``test() -> (done, value)`` until done, sleeping in between; ``deadline`` is a
    ``time.monotonic()`` value after which :class:`ExchangeTimeout` is raised."""
    delay = POLL_MIN
    while True:
        done, value = test()
        if done:
            return value
        if deadline is not None and time.monotonic() > deadline:
            raise ExchangeTimeout(f"no answer for {what}", [what])
        time.sleep(delay)
        delay = min(delay * 1.5, POLL_MAX)


def try_receive(comm, source: int, tag: int):
    """(True, object) if a message from ``source`` with ``tag`` has arrived, else (False, None)."""
    message = comm.improbe(source=source, tag=tag)
    if message is None:
        return False, None
    return True, message.recv()


def receive(comm, source: int, tag: int, deadline: float | None = None, what: str = "a message"):
    return poll(lambda: try_receive(comm, source, tag), deadline, what)


def wait(request, deadline: float | None = None, what: str = "a request"):
    """Complete an MPI request (Isend, Ibarrier) by polling."""
    return poll(lambda: (request.Test(), None), deadline, what)


def barrier(comm, deadline: float | None = None) -> None:
    """A barrier that sleeps instead of spinning while it waits."""
    wait(comm.Ibarrier(), deadline, "a barrier")


def broadcast(comm, obj=None, root: int = 0):
    """``comm.bcast`` after a sleeping Ibarrier, so ranks waiting for the root's next
    command do not spin."""
    barrier(comm)
    return comm.bcast(obj if comm.rank == root else None, root=root)
