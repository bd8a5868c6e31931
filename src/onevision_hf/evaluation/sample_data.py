"""Procedural sample data for every bundled task, in the published schemas, with answers known by construction.

``python -m onevision_hf.evaluation.sample_data src/onevision_hf/evaluation/tasks`` rewrites the bundled data
(beside the task files): charts drawn with matplotlib from known tables, forms and receipts rendered with known
field values, real photographs and a scanned page from scikit-image's shipped data (the generator's only extra
dependency, ``pip install scikit-image``), and short H.264 clips of objects whose motion and events the questions
ask about (plus a clip of the bundled ``carphone`` sequence). The data is small (under 1 MB) so the runner works
on a fresh clone; every task's layout under the root is the one its YAML and ``<task>_utils.py`` read.
"""

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..resources import bundled
from ..synthetic_video import write_video

VIDEO_SIZE = 112  # pixels, square clips
VIDEO_RATE = 8  # frames per second
CARPHONE = "media/carphone-176x144-h264.mp4"  # bundled
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 200, 30)}


# --- images -----------------------------------------------------------------------------------------------------

def _font(size: int) -> ImageFont.FreeTypeFont:
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def _figure_image(figure) -> Image.Image:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(figure)
    return Image.open(buffer).convert("RGB")


def _bar_chart(title: str, labels: list[str], values: list[float], unit: str = "", horizontal: bool = False):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    bars = (axes.barh if horizontal else axes.bar)(labels, values, color="#4878a8")
    axes.bar_label(bars, labels=[f"{value:g}{unit}" for value in values], padding=2, fontsize=9)
    axes.set_title(title, fontsize=11)
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    return _figure_image(figure)


def _line_chart(title: str, labels: list[str], values: list[float], ylabel: str):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 3.2))
    axes.plot(labels, values, marker="o", color="#c8553d")
    for x, value in enumerate(values):
        axes.annotate(f"{value:g}", (x, value), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    axes.set_title(title, fontsize=11)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, max(values) * 1.2)
    figure.tight_layout()
    return _figure_image(figure)


def _pie_chart(title: str, labels: list[str], shares: list[int]):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.0, 3.2))
    axes.pie(shares, labels=labels, autopct="%d%%", startangle=90, counterclock=False)
    axes.set_title(title, fontsize=11)
    figure.tight_layout()
    return _figure_image(figure)


def chartqa_docs() -> list[dict]:
    sales = _bar_chart("Units sold per year", ["2018", "2019", "2020", "2021", "2022"], [120, 150, 90, 200, 170])
    temperature = _line_chart("Mean temperature", ["Jan", "Feb", "Mar", "Apr", "May", "Jun"],
                              [3.5, 5.0, 9.2, 13.8, 18.1, 21.4], "degrees C")
    survey = _bar_chart("Would you cycle to work?", ["Yes", "No", "Unsure"], [45, 35, 20], unit="%", horizontal=True)
    budget = _pie_chart("Household budget", ["Rent", "Food", "Transport", "Other"], [40, 25, 15, 20])
    rows = [
        (sales, "human_test", "How many units were sold in 2021?", "200"),
        (sales, "augmented_test", "Which year had the lowest sales?", "2020"),
        (temperature, "human_test", "What is the mean temperature in April?", "13.8"),
        (temperature, "augmented_test", "In which month is the mean temperature highest?", "Jun"),
        (survey, "human_test", "What percentage of people answered Yes?", "45%"),
        (survey, "augmented_test", "What is the difference between the Yes and No shares, in percent?", "10"),
        (budget, "human_test", "Which item takes the largest share of the budget?", "Rent"),
        (budget, "augmented_test", "What share of the budget goes to food?", "25%"),
    ]
    return [{"type": kind, "question": question, "answer": answer, "image": image}
            for image, kind, question, answer in rows]


def _form_image(title: str, fields: list[tuple[str, str]], width: int = 420) -> Image.Image:
    """A white page with a title and a ruled table of ``label: value`` lines."""
    height = 90 + 34 * len(fields)
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    draw.text((20, 18), title, fill="black", font=_font(22))
    draw.line((20, 54, width - 20, 54), fill="black", width=2)
    for row, (label, value) in enumerate(fields):
        y = 66 + 34 * row
        draw.text((24, y), label, fill=(60, 60, 60), font=_font(15))
        draw.text((200, y), value, fill="black", font=_font(15))
        draw.line((20, y + 26, width - 20, y + 26), fill=(200, 200, 200), width=1)
    return page


def _scanned_page() -> Image.Image:
    """scikit-image's scan of a textbook page (title "Region-based segmentation")."""
    from skimage import data

    return Image.fromarray(data.page()).convert("RGB")


def docvqa_docs() -> list[dict]:
    invoice = _form_image("INVOICE", [("Invoice number", "INV-4821"), ("Date", "14 March 2021"),
                                      ("Customer", "Harbor Supplies Ltd."), ("Total due", "$1,234.50")])
    registration = _form_image("Conference Registration", [("Name", "Maria Lopez"), ("Affiliation", "Delft University"),
                                                           ("Badge ID", "C-0917"), ("Session", "Vision and Video")])
    memo = _form_image("MEMO", [("To", "All staff"), ("From", "Facilities"), ("Subject", "Fire drill"),
                                ("When", "Friday 10:30")])
    page = _scanned_page()
    rows = [
        (invoice, "What is the invoice number?", ["INV-4821", "4821"], ["form"], 1),
        (invoice, "What is the total amount due?", ["$1,234.50", "1,234.50"], ["form"], 1),
        (registration, "What is the badge ID?", ["C-0917"], ["form"], 2),
        (registration, "Which session is the attendee registered for?", ["Vision and Video"], ["form"], 2),
        (memo, "What is the subject of the memo?", ["Fire drill"], ["layout"], 3),
        (memo, "When does the event take place?", ["Friday 10:30"], ["layout"], 3),
        (page, "What is the title of the page?", ["Region-based segmentation"], ["layout"], 4),
        (page, "What is found at the two extreme parts of the histogram of grey values?", ["the markers", "markers"],
         ["free_text"], 4),
    ]
    return [{"questionId": str(50000 + index), "question": question, "question_types": types, "image": image,
             "docId": doc_id, "ucsf_document_id": f"sample{doc_id:04d}", "ucsf_document_page_no": "1",
             "answers": answers, "data_split": "val"}
            for index, (image, question, answers, types, doc_id) in enumerate(rows)]


def _word_image(text: str, size: int = 28, angle: float = 0.0, colors=("black", "white"),
                outline: bool = False) -> Image.Image:
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 24, bottom - top + 24), colors[1])
    draw = ImageDraw.Draw(image)
    draw.text((12 - left, 12 - top), text, fill=colors[0], font=font,
              stroke_width=2 if outline else 0, stroke_fill="black" if outline else None)
    return image.rotate(angle, expand=True, fillcolor=colors[1], resample=Image.BICUBIC) if angle else image


def ocrbench_docs() -> list[dict]:
    receipt = _form_image("CORNER CAFE", [("Date", "2023-07-02"), ("Latte", "3.80"), ("Bagel", "2.40"),
                                          ("TOTAL", "6.20")], width=360)
    rows = [
        (_word_image("harvest"), "IIIT5K", "Regular Text Recognition", "what is written in the image?", ["harvest"]),
        (_word_image("Kingdom", angle=14), "SVTP", "Irregular Text Recognition", "what is written in the image?",
         ["Kingdom"]),
        (_word_image("SUNSET", size=34, colors=("orange", "navy"), outline=True), "WordArt",
         "Artistic Text Recognition", "what is written in the image?", ["SUNSET"]),
        (_word_image("40718"), "ORAND", "Digit String Recognition", "what is the number in the image?", ["40718"]),
        (_word_image("2x + 3 = 7", size=30), "HME100k", "Handwritten Mathematical Expression Recognition",
         "Please write out the expression of the formula in the image using LaTeX format.", ["2x+3=7"]),
        (receipt, "SROIE", "Key Information Extraction", "what is the total amount of this receipt?", ["6.20"]),
        (receipt, "SROIE", "Key Information Extraction", "what is the date of this receipt?", ["2023-07-02"]),
        (_scanned_page(), "DocVQA", "Doc-oriented VQA", "What is the heading of this page?",
         ["Region-based segmentation"]),
    ]
    return [{"dataset": dataset, "question": question, "question_type": question_type, "answer": answer,
             "image": image} for image, dataset, question_type, question, answer in rows]


def _photo(name: str, side: int = 224) -> Image.Image:
    from skimage import data

    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    image.thumbnail((side, side), Image.BICUBIC)
    return image


def _shapes_diagram() -> Image.Image:
    """Three labelled shapes: A a circle, B a triangle, C a square."""
    image = Image.new("RGB", (360, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((30, 60, 110, 140), outline="black", width=3)
    draw.polygon([(180, 60), (140, 140), (220, 140)], outline="black", width=3)
    draw.rectangle((260, 60, 340, 140), outline="black", width=3)
    for x, label in ((62, "A"), (172, "B"), (292, "C")):
        draw.text((x, 155), label, fill="black", font=_font(24))
    return image


def _food_chain_diagram() -> Image.Image:
    """grass -> rabbit -> fox, arrows pointing from the eaten to the eater."""
    image = Image.new("RGB", (420, 120), "white")
    draw = ImageDraw.Draw(image)
    for x, name in ((20, "grass"), (170, "rabbit"), (320, "fox")):
        draw.rectangle((x, 40, x + 80, 80), outline="darkgreen", width=2)
        draw.text((x + 10, 48), name, fill="black", font=_font(18))
    for start in (100, 250):
        draw.line((start + 4, 60, start + 66, 60), fill="black", width=3)
        draw.polygon([(start + 70, 60), (start + 60, 54), (start + 60, 66)], fill="black")
    return image


def ai2d_docs() -> list[dict]:
    shapes, chain = _shapes_diagram(), _food_chain_diagram()
    rows = [
        (shapes, "Which label marks the triangle?", ["label A", "label B", "label C", "no label"], 1),
        (shapes, "What shape is labelled C?", ["circle", "triangle", "square", "star"], 2),
        (chain, "In this food chain, what does the rabbit eat?", ["fox", "grass", "nothing", "rabbit"], 1),
        (chain, "Which organism is the top predator?", ["grass", "rabbit", "fox", "sun"], 2),
        (_photo("chelsea"), "Which animal is shown in the picture?", ["dog", "cat", "horse", "bird"], 1),
        (_photo("coffee"), "What is in the cup?", ["coffee", "soup", "milk", "juice"], 0),
        (_photo("coins"), "How many coins are in the image?", ["12", "18", "24", "30"], 2),
        (_photo("rocket"), "What vehicle is shown?", ["a bus", "a ship", "a train", "a rocket"], 3),
    ]
    return [{"question": question, "options": options, "answer": str(answer), "image": image}
            for image, question, options, answer in rows]


# --- videos -----------------------------------------------------------------------------------------------------

def _background(seed: int) -> np.ndarray:
    """A soft static texture: something for the codec to code once, then skip."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(150, 230, size=(VIDEO_SIZE // 16, VIDEO_SIZE // 16, 1))
    return np.repeat(np.repeat(coarse, 16, 0), 16, 1).repeat(3, 2).astype(np.uint8)


def _clip(tracks: list[tuple[str, str, list[tuple[float, float] | None]]], seed: int) -> list[np.ndarray]:
    """Frames of objects on a static background. Each track is (shape, colour, per-frame centre (y, x) or None
    when the object is absent); shapes are ``ball`` and ``square``, 20 pixels across."""
    background = _background(seed)
    yy, xx = np.mgrid[:VIDEO_SIZE, :VIDEO_SIZE]
    frames = []
    for index in range(len(tracks[0][2])):
        frame = background.copy()
        for shape, color, centres in tracks:
            if centres[index] is None:
                continue
            y, x = centres[index]
            if shape == "ball":
                mask = (yy - y) ** 2 + (xx - x) ** 2 <= 10**2
            else:
                mask = (abs(yy - y) <= 10) & (abs(xx - x) <= 10)
            frame[mask] = COLORS[color]
        frames.append(frame)
    return frames


def _linear(start: tuple[float, float], end: tuple[float, float], frames: int) -> list[tuple[float, float]]:
    return [(start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t) for t in np.linspace(0, 1, frames)]


DIRECTION_ENDS = {"left": ((56, 96), (56, 16)), "right": ((56, 16), (56, 96)),
                  "up": ((96, 56), (16, 56)), "down": ((16, 56), (96, 56))}


def _moving(direction: str, frames: int) -> list[tuple[float, float]]:
    return _linear(*DIRECTION_ENDS[direction], frames)


def _jumps(count: int, frames: int) -> list[tuple[float, float]]:
    """A ball resting at the bottom that jumps ``count`` times (one jump per 8 frames, rests in between)."""
    heights = np.zeros(frames)
    for jump in range(count):
        start = 4 + jump * 12
        heights[start:start + 8] = 50 * np.sin(np.linspace(0, np.pi, 8))
    return [(90 - height, 56) for height in heights]


def _write_clip(path: Path, frames: list[np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, rate=VIDEO_RATE, options={"crf": "26", "threads": "1", "bf": "2"})


def _write_carphone_clip(path: Path, num_frames: int = 48) -> None:
    """The first frames of the bundled real ``carphone`` sequence (a man talking in a car), re-encoded small."""
    import av

    with av.open(str(bundled(CARPHONE))) as container:
        frames = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(num_frames), container.decode(video=0))]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, rate=VIDEO_RATE, options={"crf": "30", "threads": "1"})


def videomme_docs(root: Path) -> list[dict]:
    videos = root / "videomme" / "data"
    clips = {
        "vm-001": _clip([("ball", "red", _moving("right", 16))], seed=1),
        "vm-002": _clip([("square", "green", [None] * 8 + [(56, 56)] * 8)], seed=2),
        "vm-003": _clip([("ball", "red", _moving("down", 32)), ("square", "blue", _moving("left", 32))], seed=3),
        "vm-005": _clip([("square", "blue", [(56, 56)] * 48 + [None] * 16)], seed=5),
        "vm-006": _clip([("ball", "yellow", _moving("down", 32) + _moving("up", 32))], seed=6),
    }
    for video_id, frames in clips.items():
        _write_clip(videos / f"{video_id}.mp4", frames)
    _write_carphone_clip(videos / "vm-004.mp4")
    rows = [
        ("vm-001", "short", "Temporal Perception", "In which direction does the red ball move?",
         ["Left", "Right", "Up", "Down"], "B"),
        ("vm-002", "short", "Attribute Perception", "What colour is the square that appears?",
         ["Red", "Blue", "Green", "Yellow"], "C"),
        ("vm-003", "medium", "Counting Problem", "How many objects move in the video?", ["1", "2", "3", "4"], "B"),
        ("vm-004", "medium", "Spatial Perception", "Where is the man in the video?",
         ["On a beach", "In a car", "In a kitchen", "On a boat"], "B"),
        ("vm-005", "long", "Temporal Reasoning", "What happens to the blue square at the end of the video?",
         ["It grows", "It turns red", "It disappears", "It splits in two"], "C"),
        ("vm-006", "long", "Action Reasoning", "In which direction does the ball move at the end of the video?",
         ["Up", "Down", "Left", "Right"], "A"),
    ]
    return [{"video_id": video_id.split("-")[1], "duration": duration, "domain": "Life Record",
             "sub_category": "Daily Life", "url": "", "videoID": video_id, "question_id": f"{video_id}-1",
             "task_type": task_type, "question": question,
             "options": [f"{letter}. {option}" for letter, option in zip("ABCD", options)], "answer": answer}
            for video_id, duration, task_type, question, options, answer in rows]


def mvbench_docs(root: Path) -> dict[str, list[dict]]:
    directions = root / "mvbench_video" / "clevrer" / "video_validation"
    counts = root / "mvbench_video" / "perception" / "videos"
    moving, counting = [], []
    for index, (direction, color) in enumerate((("left", "red"), ("up", "blue"), ("right", "green"))):
        name = f"direction_{index}.mp4"
        _write_clip(directions / name, _clip([("ball", color, _moving(direction, 16))], seed=10 + index))
        moving.append({"video": name, "question": f"In which direction is the {color} ball moving?",
                       "candidates": ["up", "down", "left", "right"], "answer": direction})
    for index, jumps in enumerate((1, 2, 3)):
        name = f"jumps_{index}.mp4"
        _write_clip(counts / name, _clip([("ball", "red", _jumps(jumps, 40))], seed=20 + index))
        counting.append({"video": name, "question": "How many times does the ball jump?",
                         "candidates": ["1", "2", "3"], "answer": str(jumps)})
    return {"moving_direction": moving, "action_count": counting}


def perceptiontest_docs(root: Path) -> list[dict]:
    videos = root / "perceptiontest_val" / "videos"
    still, frames = (56, 90), 24
    scenes = [  # (name, tracks, question, options, answer_id)
        ("video_0001", [("ball", "red", _moving("right", frames)), ("square", "blue", [(20, 20)] * frames)],
         "Which object moves?", ["the red ball", "the blue square", "neither"], 0),
        ("video_0002", [("ball", "red", [still] * frames), ("square", "blue", _moving("down", frames))],
         "Which object moves?", ["the red ball", "the blue square", "neither"], 1),
        ("video_0003", [("ball", "green", [None] * 12 + [still] * 12), ("square", "yellow", [(20, 20)] * frames)],
         "Which object appears during the video?", ["the yellow square", "the green ball", "a red ball"], 1),
    ]
    docs = []
    for index, (name, tracks, question, options, answer_id) in enumerate(scenes):
        _write_clip(videos / f"{name}.mp4", _clip(tracks, seed=30 + index))
        docs.append({"video_name": name, "question": question, "question_id": f"{name}_q0", "options": options,
                     "answer_id": answer_id, "area": "physics", "reasoning": "descriptive", "tag": ["motion"]})
    return docs


def nextqa_docs(root: Path) -> list[dict]:
    videos = root / "nextqa" / "NExTVideo"
    bounce = _linear((56, 16), (56, 96), 12) + _linear((56, 96), (56, 30), 12)
    scenes = [  # (video, tracks, type, question, options, answer)
        (1001, [("ball", "red", bounce)], "TN", "what does the red ball do after it reaches the right side?",
         ["stops", "moves back to the left", "disappears", "turns blue", "jumps up"], 1),
        (1002, [("square", "blue", [None] * 10 + [(56, 56)] * 14)], "TC", "what happens in the middle of the video?",
         ["a ball rolls in", "the screen goes dark", "a blue square appears", "a square shrinks", "nothing"], 2),
        (1003, [("ball", "green", _moving("up", 24))], "CW", "why does the green ball end near the top?",
         ["it moves upwards", "it falls down", "it is pushed left", "it stays still", "it bounces right"], 0),
    ]
    docs = []
    for qid, (video, tracks, kind, question, options, answer) in enumerate(scenes):
        _write_clip(videos / f"{video}.mp4", _clip(tracks, seed=video))
        docs.append({"video": video, "frame_count": len(tracks[0][2]), "width": VIDEO_SIZE, "height": VIDEO_SIZE,
                     "question": question, "answer": answer, "qid": qid, "type": kind,
                     **{f"a{index}": option for index, option in enumerate(options)}})
    return docs


# --- writing ----------------------------------------------------------------------------------------------------

def _write_parquet(path: Path, rows: list[dict], image_column: str | None = None) -> None:
    import datasets

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    features = None
    if image_column is not None:
        dataset = datasets.Dataset.from_dict({k: v for k, v in columns.items() if k != image_column})
        features = datasets.Features({**dataset.features, image_column: datasets.Image()})
    dataset = datasets.Dataset.from_dict(columns, features=features)
    dataset.to_parquet(str(path))


def _write_json(path: Path, rows: list[dict]) -> None:
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def write_sample_data(root: Path) -> list[Path]:
    """Write every task's sample data under ``root``; returns the data files written."""
    root = Path(root)
    written = []
    for relative, rows in (("ai2d/test.parquet", ai2d_docs()), ("chartqa/test.parquet", chartqa_docs()),
                           ("docvqa/validation.parquet", docvqa_docs()), ("ocrbench/test.parquet", ocrbench_docs())):
        _write_parquet(root / relative, rows, image_column="image")
        written.append(root / relative)
    for relative, rows in (("videomme/test.parquet", videomme_docs(root)),
                           ("perceptiontest/mc_question_val.parquet", perceptiontest_docs(root)),
                           ("nextqa/MC/test.parquet", nextqa_docs(root))):
        _write_parquet(root / relative, rows)
        written.append(root / relative)
    for sub_task, rows in mvbench_docs(root).items():
        _write_json(root / "mvbench" / f"{sub_task}.json", rows)
        written.append(root / "mvbench" / f"{sub_task}.json")
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m onevision_hf.evaluation.sample_data", description=__doc__)
    parser.add_argument("root", type=Path,
                        help="directory to write the sample data to (bundled: src/onevision_hf/evaluation/tasks)")
    args = parser.parse_args(argv)
    for path in write_sample_data(args.root):
        print(path)


if __name__ == "__main__":
    main()
