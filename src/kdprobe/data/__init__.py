"""Stage `data` (workflow/rules/data.smk, rule `prepare_data`): raw task files in their own formats (`prepare`;
Rasa markdown and YAML in `rasa`) -> the normalised `resources/data/{task}/{train,dev,test}.tsv` and `labels.txt`
that every later stage reads through `kdprobe.splits`."""
