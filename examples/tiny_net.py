"""The tiny network of micrograd's lecture: 3 inputs, two hidden layers of 4
tanh neurons and a tanh output (41 parameters), fitted to 4 samples by
gradient descent on the sum of squared errors.

Run: python examples/tiny_net.py
"""

import fmicrograd as fm
from fmicrograd.nn import MLP, Layer

xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
ys = [1.0, -1.0, -1.0, 1.0]  # desired targets


def sum_squared_errors(model):
    return fm.sum([(model(x) - y) ** 2 for x, y in zip(xs, ys)])


def main() -> None:
    k1, k2, k3 = fm.random.split(fm.random.key(0), 3)
    # every neuron tanh, the output too, as in the lecture
    model = MLP((Layer.init(3, 4, key=k1, activation="tanh"),
                 Layer.init(4, 4, key=k2, activation="tanh"),
                 Layer.init(4, 1, key=k3, activation="tanh")))
    print(f"{model}: {fm.nn.count_params(model)} parameters")

    loss_and_grad = fm.value_and_grad(sum_squared_errors)
    for k in range(50):
        loss, grads = loss_and_grad(model)
        model = fm.tree.map(lambda p, g: p - 0.1 * g, model, grads)  # a new model each step
        if k % 5 == 0:
            print(f"step {k:2d} loss {loss:.6f}")
    print(f"final loss {sum_squared_errors(model):.6f}")
    print("predictions", [round(model(x), 4) for x in xs], "targets", ys)


if __name__ == "__main__":
    main()
