"""`make`: chosen pieces -> anonymised audio files, a questionnaire, and an answer key kept apart."""

from __future__ import annotations

import csv
import logging
import random
import shutil
from pathlib import Path

from ..errors import MoodgenError
from ..generation.render import missing_audio_tool, render_wav
from ..moods import MOODS
from .pieces import Piece, find_pieces
from .questionnaire import questionnaire_html

log = logging.getLogger("moodgen")
KEY_COLUMNS = ("question", "file", "mood_index", "mood", "original")


def choose_pieces(
    pieces: list[Piece], skipped: list[tuple[Path, str]], moods: list[int], per_mood: int, seed: int, folder: Path
) -> list[Piece]:
    """`per_mood` pieces of each mood, drawn and shuffled with `seed`: the question order hides the moods."""
    rng = random.Random(seed)
    chosen = []
    for mood in moods:
        candidates = [p for p in pieces if p.mood == mood]
        if len(candidates) < per_mood:
            raise MoodgenError(too_few_message(MOODS[mood], len(candidates), per_mood, folder, skipped))
        chosen += rng.sample(candidates, per_mood)
    rng.shuffle(chosen)
    return chosen


def too_few_message(mood: str, found: int, per_mood: int, folder: Path, skipped: list[tuple[Path, str]]) -> str:
    # generate numbers pieces <mood>_0 .. <mood>_{n-1}, so n=per_mood always leaves enough
    message = (
        f"only {found} {mood} piece(s) in {folder}, per_mood={per_mood} needs {per_mood}: "
        f"run python -m moodgen.generate mood={mood} n={per_mood} out_dir={folder}, or lower per_mood"
    )
    if skipped:
        first, reason = skipped[0]
        message += f" ({len(skipped)} MIDI file(s) skipped, e.g. {first.name}: {reason})"
    return message


def write_audio(piece: Piece, stem: Path, can_render: bool) -> Path:
    """`<stem>.wav`: the piece's own WAV, else one rendered now; `<stem>.mid` when neither is possible."""
    wav = stem.with_suffix(".wav")
    if piece.wav is not None:
        shutil.copyfile(piece.wav, wav)
        return wav
    if can_render and render_wav(piece.midi, wav):
        return wav
    midi = stem.with_suffix(".mid")
    shutil.copyfile(piece.midi, midi)  # copy, not dump: the bytes listeners get are the generated piece's
    return midi


def write_answer_key(path: Path, chosen: list[Piece], audio: list[Path]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(KEY_COLUMNS)
        for number, (piece, file) in enumerate(zip(chosen, audio, strict=True), start=1):
            writer.writerow([f"q{number}", file.name, piece.mood, MOODS[piece.mood], piece.midi.resolve()])


def warn_midi_only(audio: list[Path], missing_tool: str | None) -> None:
    midi = [file.name for file in audio if file.suffix == ".mid"]
    if midi:
        cause = f"{missing_tool} not found (apt-get install fluidsynth)" if missing_tool else "fluidsynth failed"
        log.warning(
            "no WAV for %s: %s; copied the MIDI instead, which browsers do not play (listeners must download it)",
            ", ".join(midi),
            cause,
        )


def make_survey(
    pieces: Path, per_mood: int = 2, moods: list[int] | None = None, out: Path = Path("survey"), seed: int = 0
) -> None:
    moods = moods or list(range(len(MOODS)))
    found, skipped = find_pieces(pieces)
    chosen = choose_pieces(found, skipped, moods, per_mood, seed, pieces)
    questionnaire = out / "questionnaire"
    if questionnaire.exists() and any(questionnaire.iterdir()):
        raise MoodgenError(f"{questionnaire} already holds a questionnaire: choose another out= or delete it")
    questionnaire.mkdir(parents=True, exist_ok=True)
    missing_tool = missing_audio_tool()
    digits = max(2, len(str(len(chosen))))  # q01, q02, ...: names sort in question order
    audio = [
        write_audio(piece, questionnaire / f"q{number:0{digits}d}", missing_tool is None)
        for number, piece in enumerate(chosen, start=1)
    ]
    warn_midi_only(audio, missing_tool)
    (questionnaire / "index.html").write_text(questionnaire_html([file.name for file in audio]))
    key = out / "answer_key.csv"  # beside, not inside, the folder that goes to listeners
    write_answer_key(key, chosen, audio)
    print_made(chosen, moods, per_mood, seed, questionnaire, key, skipped)


def print_made(
    chosen: list[Piece],
    moods: list[int],
    per_mood: int,
    seed: int,
    questionnaire: Path,
    key: Path,
    skipped: list[tuple[Path, str]],
) -> None:
    print(
        f"moodgen: survey of {len(chosen)} pieces ({per_mood} per mood: {', '.join(MOODS[m] for m in moods)}), "
        f"seed {seed}"
    )
    print(f"  questionnaire  {questionnaire / 'index.html'}  (send the whole folder {questionnaire})")
    print(f"  answer key     {key}  (keep it from listeners)")
    print(f"  score with     python -m moodgen.survey score responses=<answers.csv> key={key}")
    if skipped:
        print(f"  skipped {len(skipped)} MIDI file(s):")
        for midi, reason in skipped:
            print(f"    {midi}: {reason}")
