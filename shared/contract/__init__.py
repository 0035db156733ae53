"""What crosses a process boundary, defined once: the names the API, the consumers, the pipeline's
components and the cloud's own records (job ids, labels, task names) agree on.

- `nodes.py`: the pipeline's node ids and the run stage each reports to;
- `labels.py`: the labels Trainyard puts on cloud resources (and their sanitizer), pipeline job ids.
"""
