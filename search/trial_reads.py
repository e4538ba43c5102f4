"""How a process on the database reads a study's trials: finished ones once, by plain queries.

Every worker reads the study's trials before each trial (the budget, the sampler), and
`hpsearch proxy` reads them for each of its clients' calls. Optuna's cached storage reads each
finished trial once, but every trial still in flight whole at every read, through SQLAlchemy's
ORM, under one lock: at K = 64 a worker spent 20 ms a trial building the 64 trials finished
since its last read, and the proxy more than half its time (issue 32). `TrialReads.read` gives
what Optuna's read gives, from:

- one light query for the trials after the last one it knows to be finished with everything
  before it: id, number, state and start of each;
- the trials among them that finished since its last read, whole, once, and (unless `light`)
  those in flight, whole, at every read: plain queries of their rows, a third of the ORM's CPU,
  with no lock held while the database answers.

`light` is for a worker whose sampler and pruner look only into finished trials (TPE, random
and QMC sampling; the Wilcoxon, curve, median and percentile pruners; search/algorithms.py:
`reads_finished_only`), and whose own loop only counts the others by state: the trials in
flight come as stubs (state, number and start; no parameters, attributes or reports), whose
contents are read when they finish. Trial ids grow in the order trials are created (Optuna
locks the study's row to number them), so "every trial up to this id is finished" stays true.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

from hpsearch.optuna_internals import bare_trial
from hpsearch.optuna_internals import trial_id as id_of
from hpsearch.optuna_internals import trial_tables

_CHUNK = 5000  # trial ids in one query (a bound parameter each: the drivers' limits are higher)


class TrialReads:
    """What one process holds of each study's finished trials (its threads may share it)."""

    def __init__(self) -> None:
        self.finished: dict[int, dict[int, Any]] = {}  # study id -> trial id -> FrozenTrial
        self.known_up_to: dict[int, int] = {}  # study id -> every trial id up to it finished
        self.distributions: dict[str, Any] = {}  # a parameter's stored JSON -> its distribution
        self._lock = threading.Lock()

    def read(self, rdb: Any, study_id: int, *, light: bool) -> list[Any]:
        """The study's trials, sorted by number; in flight as stubs if `light`."""
        import sqlalchemy

        with self._lock:
            finished = self.finished.setdefault(study_id, {})
            after = self.known_up_to.get(study_id, -1)
        table = trial_tables().trials
        query = (
            sqlalchemy.select(
                table.c.trial_id, table.c.number, table.c.state, table.c.datetime_start
            )
            .where(table.c.study_id == study_id, table.c.trial_id > after)
            .order_by(table.c.trial_id)
        )
        # One transaction, on the thread's session of Optuna's.
        session = rdb.scoped_session()
        try:
            rows = session.execute(query).all()
            # Every trial not held yet; light, only those newly finished.
            wanted = [
                r[0] for r in rows if r[0] not in finished and (r[2].is_finished() or not light)
            ]
            read = []
            for start in range(0, len(wanted), _CHUNK):
                read += self._whole(session, wanted[start : start + _CHUNK])
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        in_flight = {id_of(t): t for t in read if not t.state.is_finished()}
        with self._lock:
            finished.update((id_of(t), t) for t in read if t.state.is_finished())
            for row in rows:
                if row[0] not in finished:
                    break
                after = row[0]
            self.known_up_to[study_id] = max(after, self.known_up_to.get(study_id, -1))
            mine = list(finished.values())
            mine += [in_flight.get(r[0]) or _stub(*r) for r in rows if r[0] not in finished]
        return sorted(mine, key=lambda t: t.number)

    def _whole(self, session: Any, ids: list[int]) -> list[Any]:
        """The trials `ids`, whole, as Optuna's own read builds them, from their rows."""
        import json

        import sqlalchemy
        from optuna.trial import FrozenTrial

        t = trial_tables()

        def rows(table: Any, *columns: str) -> dict[int, list[tuple]]:
            """Each trial's rows of `table`, in the order they were written."""
            found: dict[int, list[tuple]] = {i: [] for i in ids}
            query = sqlalchemy.select(table.c.trial_id, *(table.c[c] for c in columns))
            query = query.where(table.c.trial_id.in_(ids)).order_by(*table.primary_key.columns)
            for row in session.execute(query):
                found[row[0]].append(row[1:])
            return found

        # The trials' rows first: a trial finished by then is told with everything it holds
        # (one transaction), which the later queries see.
        trials = rows(t.trials, "number", "state", "datetime_start", "datetime_complete")
        params = rows(t.params, "param_name", "param_value", "distribution_json")
        values = rows(t.values, "objective", "value", "value_type")
        user_attrs = rows(t.user_attrs, "key", "value_json")
        system_attrs = rows(t.system_attrs, "key", "value_json")
        reports = rows(t.intermediate, "step", "intermediate_value", "intermediate_value_type")
        whole = []
        for i, found in trials.items():  # one row each (none if the study was just deleted)
            for number, state, start, complete in found:
                chosen = {name: self._distribution(stored) for name, _, stored in params[i]}
                objectives = sorted(values[i], key=lambda row: row[0])
                whole.append(
                    FrozenTrial(
                        number=number,
                        state=state,
                        value=None,
                        values=[t.value_of(v, kind) for _, v, kind in objectives] or None,
                        datetime_start=_local(start),
                        datetime_complete=_local(complete),
                        params={n: chosen[n].to_external_repr(v) for n, v, _ in params[i]},
                        distributions=chosen,
                        user_attrs={key: json.loads(v) for key, v in user_attrs[i]},
                        system_attrs={key: json.loads(v) for key, v in system_attrs[i]},
                        intermediate_values={s: t.intermediate_of(v, k) for s, v, k in reports[i]},
                        trial_id=i,
                    )
                )
        return whole

    def _distribution(self, stored: str) -> Any:
        """A parameter's distribution from its stored JSON (the same for most trials: parsed
        once)."""
        if stored not in self.distributions:
            from optuna.distributions import json_to_distribution

            self.distributions[stored] = json_to_distribution(stored)
        return self.distributions[stored]


def _local(utc: Any) -> Any:
    """A stored naive UTC time in naive local time, as Optuna gives it."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.UTC).astimezone().replace(tzinfo=None)


def _stub(trial_id: int, number: int, state: Any, start_utc: Any) -> Any:
    """A trial in flight: its state, number and start (in local time, as Optuna gives it)."""
    return bare_trial(trial_id, number, state, _local(start_utc))
