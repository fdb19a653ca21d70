echo included >> /root/log
