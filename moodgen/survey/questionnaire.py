"""The questionnaire: one self-contained HTML page that works offline and hides which piece is which."""

from __future__ import annotations

from html import escape

from ..moods import MOODS

# Inline CSS and script, no external assets: the page works from a USB stick or an e-mail attachment.
# Every question block is identical but for its number and file, so the page leaks no mood.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Listening test</title>
<style>
body { font-family: sans-serif; max-width: 44em; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
fieldset { margin: 1.2em 0; border: 1px solid #bbb; border-radius: 6px; }
audio { display: block; width: 100%; margin: 0.4em 0 0.6em; }
label.choice { margin-right: 1.2em; white-space: nowrap; }
button { font-size: 1.1em; padding: 0.4em 1.2em; }
</style>
</head>
<body>
<h1>Listening test</h1>
<p>Listen to each piece and choose the mood it expresses best; go by your first impression.
When every question is answered, press
<em>Download answers</em> and send the downloaded file back.</p>
<p><label>Your name or initials (optional): <input id="respondent" autocomplete="off"></label></p>
<form id="answers">
<!--QUESTIONS-->
</form>
<p><button type="button" id="download">Download answers</button></p>
<p id="status" role="status"></p>
<script>
document.getElementById("download").addEventListener("click", function () {
  var count = document.querySelectorAll("fieldset.question").length;
  var answers = [], missing = [];
  for (var q = 1; q <= count; q++) {
    var choice = document.querySelector('input[name="q' + q + '"]:checked');
    if (choice) { answers.push(choice.value); } else { missing.push(q); }
  }
  var status = document.getElementById("status");
  if (missing.length) {
    status.textContent = "Please answer question(s) " + missing.join(", ") + " first.";
    return;
  }
  // commas, quotes and line breaks would break the CSV row
  var name = document.getElementById("respondent").value.replace(/[",\\r\\n]/g, " ").trim();
  var header = ["respondent"];
  for (var i = 1; i <= count; i++) { header.push("q" + i); }
  var csv = header.join(",") + "\\n" + [name].concat(answers).join(",") + "\\n";
  var link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  link.download = "answers" + (name ? "_" + name.replace(/\\W+/g, "_") : "") + ".csv";
  document.body.appendChild(link);
  link.click();
  link.remove();
  status.textContent = "Saved " + link.download + ". Thank you!";
});
</script>
</body>
</html>
"""


def question_html(number: int, audio_file: str) -> str:
    """One question: a player (or, for MIDI, which browsers do not play, a link) and the four moods."""
    src = escape(audio_file, quote=True)
    player = f'<audio controls preload="none" src="{src}"></audio>'
    if not audio_file.endswith(".wav"):
        player += f'\n<p><a href="{src}" download>{src}</a>: open it in a MIDI player</p>'
    choices = "\n".join(
        f'<label class="choice"><input type="radio" name="q{number}" value="{index}"> {mood}</label>'
        for index, mood in enumerate(MOODS)
    )
    return f'<fieldset class="question">\n<legend>Question {number}</legend>\n{player}\n{choices}\n</fieldset>'


def questionnaire_html(audio_files: list[str]) -> str:
    questions = "\n".join(question_html(number, name) for number, name in enumerate(audio_files, start=1))
    return PAGE.replace("<!--QUESTIONS-->", questions)
